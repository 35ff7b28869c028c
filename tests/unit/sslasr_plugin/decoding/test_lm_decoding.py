"""LM beam search (sslasr_plugin.decoding.lm) on constructed emissions, and its file errors."""
import math

import pytest
import torch

from data_prep.lm import build_lms
from sslasr_plugin.decoding.ctc import greedy_decode
from sslasr_plugin.decoding.lm import LmBeamDecoder, LmDecodingError, aligned_path

TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "|", "A", "C", "K", "T", "H", "E"]
BLANK = 0


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """Word and letter LMs in which CAT is common and KAT occurs once."""
    sentences = ["THE CAT"] * 20 + ["A CAT"] * 5 + ["THE KAT"]
    return build_lms(str(tmp_path_factory.mktemp("lm")), word_order=2, letter_order=4, sentences=sentences)


def emission(spelling, prefer):
    """Log-probs (1, T, V) spelling ``spelling`` one token per frame with a blank between, where
    the frame of a letter listed in ``prefer`` (letter -> rival) gives 0.55 to it and 0.45 to
    the rival: the acoustics lean one way, an LM may tip the other."""
    frames = []
    for symbol in spelling:
        probs = torch.full((len(TOKENS),), 1e-4)
        if symbol in prefer:
            probs[TOKENS.index(symbol)], probs[TOKENS.index(prefer[symbol])] = 0.55, 0.45
        else:
            probs[TOKENS.index(symbol)] = 1.0
        frames.append(probs)
        blank = torch.full((len(TOKENS),), 1e-4)
        blank[BLANK] = 1.0
        frames.append(blank)
    lprobs = torch.stack(frames).div(torch.stack(frames).sum(-1, keepdim=True)).log()
    return lprobs[None], torch.tensor([lprobs.size(0)])


def words(hypo):
    return "".join(TOKENS[t] for t in hypo["tokens"]).replace("|", " ").split()


@pytest.mark.parametrize("lexicon", [True, False])
def test_the_lm_changes_the_chosen_word(tiny_lm, lexicon):
    lprobs, lengths = emission("THE|KAT|", prefer={"K": "C"})
    assert words(greedy_decode(lprobs, lengths, BLANK)[0]) == ["THE", "KAT"]
    kw = dict(kenlm_model=str(tiny_lm / ("word.bin" if lexicon else "letter.bin")),
              lexicon=str(tiny_lm / "lexicon.txt") if lexicon else None, beam=20)
    without = LmBeamDecoder(TOKENS, BLANK, lm_weight=0.0, **kw)(lprobs, lengths, BLANK)[0]
    with_lm = LmBeamDecoder(TOKENS, BLANK, lm_weight=2.0, **kw)(lprobs, lengths, BLANK)[0]
    assert words(without) == ["THE", "KAT"]
    assert words(with_lm) == ["THE", "CAT"]
    assert with_lm["positional_scores"].shape == with_lm["tokens"].shape
    assert with_lm["positional_scores"].dtype == torch.float32


def test_lexicon_words_only(tiny_lm):
    """With a lexicon, a word the lexicon lacks (unk weight -inf) is never output."""
    lprobs, lengths = emission("THE|TAT|", prefer={})
    hypo = LmBeamDecoder(TOKENS, BLANK, str(tiny_lm / "word.bin"), str(tiny_lm / "lexicon.txt"), beam=20,
                         lm_weight=0.0, unk_weight=-math.inf)(lprobs, lengths, BLANK)[0]
    assert set(words(hypo)) <= {"THE", "CAT", "KAT", "A"}


def test_missing_lm_names_the_file(tmp_path):
    with pytest.raises(LmDecodingError, match=f"{tmp_path}/none.bin does not exist"):
        LmBeamDecoder(TOKENS, BLANK, str(tmp_path / "none.bin"))


def test_malformed_lm_names_the_file(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("this is not an ARPA file\n")
    with pytest.raises(LmDecodingError, match=f"{bad} cannot be loaded as a KenLM model"):
        LmBeamDecoder(TOKENS, BLANK, str(bad))


@pytest.mark.parametrize("line,why", [("CAT\tC A X |", "not in the CTC dictionary"), ("CAT", "no spelling")])
def test_malformed_lexicon_names_file_and_line(tiny_lm, tmp_path, line, why):
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text(f"THE\tT H E |\n{line}\n")
    with pytest.raises(LmDecodingError, match=f"{lexicon}:2: .*{why}"):
        LmBeamDecoder(TOKENS, BLANK, str(tiny_lm / "word.bin"), str(lexicon))


def test_aligned_path_collapses_to_the_lm_transcript(tiny_lm):
    """An LM transcript that differs from the best path (CAT for KAT) becomes a frame path that
    spells it, on the frames where the best path spells KAT."""
    lprobs, lengths = emission("THE|KAT|", prefer={"K": "C"})
    hypo = LmBeamDecoder(TOKENS, BLANK, str(tiny_lm / "letter.bin"), beam=20, lm_weight=2.0)(lprobs, lengths, BLANK)[0]
    path = aligned_path(lprobs[0], hypo["tokens"], BLANK)
    greedy = lprobs[0].argmax(-1)
    assert path.shape == greedy.shape
    assert torch.equal(torch.unique_consecutive(path)[torch.unique_consecutive(path) != BLANK], hypo["tokens"])
    differs = (path != greedy).nonzero().flatten().tolist()
    assert [TOKENS[greedy[t]] for t in differs] == ["K"] and [TOKENS[path[t]] for t in differs] == ["C"]
    assert torch.equal(aligned_path(lprobs[0], torch.tensor([], dtype=torch.long), BLANK), torch.zeros(16).long())
