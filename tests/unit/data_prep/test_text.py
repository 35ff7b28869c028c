from data_prep.text import letters, normalize_sentence, normalized_sentences, split_fortune_file


def test_normalize_keeps_inner_apostrophes_and_drops_punctuation():
    assert normalize_sentence("Don't panic, it's only a 'test'!") == "DON'T PANIC IT'S ONLY A TEST"


def test_hyphens_and_dashes_break_words():
    assert normalize_sentence("A well-known man -- or so they say.") == "A WELL KNOWN MAN OR SO THEY SAY"


def test_rejections():
    assert normalize_sentence("There are 3 kinds of people here.") is None  # digit
    assert normalize_sentence("The IBM machine was very slow today.") is None  # acronym: spelled out
    assert normalize_sentence("Caf\u00e9 society is quite boring now.") is None  # non-ASCII
    assert normalize_sentence("Too short.") is None
    assert normalize_sentence(" ".join(["word"] * 15)) is None
    assert normalize_sentence("I am what I am, said he.") == "I AM WHAT I AM SAID HE"  # "I" is no acronym


def test_fortune_entries_and_attributions():
    content = "First one is here.  Second one is there!\n\t\t-- Someone Famous\n%\nThird entry is fine too.\n%\n"
    assert list(split_fortune_file(content)) == [
        "First one is here.  Second one is there!\n\t\t-- Someone Famous",
        "Third entry is fine too.",
    ]
    assert normalized_sentences(split_fortune_file(content), min_words=3) == [
        "FIRST ONE IS HERE", "SECOND ONE IS THERE", "THIRD ENTRY IS FINE TOO",
    ]


def test_letters_fairseq_style():
    assert letters("HI YOU'RE") == "H I | Y O U ' R E |"
