"""lhotse manifests (recordings + supervisions, or a CutSet) to fairseq files, read with lhotse itself.

    python -m data_prep.importers.lhotse_manifest --recordings recs.jsonl.gz --supervisions sups.jsonl.gz \\
        --split labeled --out data/mine
    python -m data_prep.importers.lhotse_manifest --cuts cuts.jsonl.gz --split unlabeled --unlabeled --out data/mine

Every corpus lhotse has a recipe for (``lhotse prepare <corpus> ...``) comes in this way.  Each
supervision becomes a row (``trim_to_supervisions``: a recording with several supervised segments
gives several rows); ``--unlabeled`` (or a set without supervisions) takes whole cuts, without text.  A cut that
is a whole 16 kHz mono flac/wav/ogg file is referenced where it lies; any other (a segment, another
rate or format, a recording lhotse builds from a command or URL) is read by lhotse
(``cut.load_audio()``), resampled by torchaudio when ``--resample`` allows, and written into the
cache folder.  Text gets the generic rules unless ``--normalization librispeech``.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .common import (
    AUDIO_EXTENSIONS, NORMALIZERS, ImportProblem, ImportResult, Item, add_audio_arguments, audio_kwargs, run_cli,
    write_split,
)


def _whole_file(cut) -> Optional[str]:
    """The audio file a cut is, whole and untransformed, or None."""
    rec = getattr(cut, "recording", None)
    if rec is None or len(rec.sources) != 1 or rec.transforms or cut.start > 0 \
            or abs(cut.duration - rec.duration) > 1e-3:
        return None
    source = rec.sources[0]
    if source.type != "file" or Path(source.source).suffix.lower() not in AUDIO_EXTENSIONS:
        return None
    return source.source if len(source.channels) == rec.num_channels else None


def _item(cut, text: Optional[str]) -> Item:
    path = _whole_file(cut)
    return Item(cut.id, path or cut.id, text, load=None if path else (lambda: (cut.load_audio(), cut.sampling_rate)))


def lhotse_items(cuts, normalize, unlabeled: bool, where: str):
    """One item per supervision; per cut when ``unlabeled`` or no cut has a supervision."""
    if unlabeled or not any(cut.supervisions for cut in cuts):
        return [_item(cut, None) for cut in cuts]
    bare = [cut.id for cut in cuts if not cut.supervisions]
    if bare:
        raise ImportProblem(f"{where}: {len(bare)} cut(s) have no supervision (the first: {bare[0]!r}); "
                            "import them with --unlabeled (whole cuts, no text) or filter them out with lhotse")
    items = []
    for cut in cuts.trim_to_supervisions(keep_overlapping=False):
        text = cut.supervisions[0].text
        if text is None:
            raise ImportProblem(f"{where}: supervision {cut.supervisions[0].id!r} has no text; "
                                "import the set with --unlabeled, or add the transcripts")
        items.append(_item(cut, normalize(text)))
    return items


def import_lhotse(split: str, cuts=None, recordings=None, supervisions=None, unlabeled: bool = False,
                  normalization: str = "generic", **kwargs) -> ImportResult:
    """Import a lhotse CutSet file (``cuts``) or a RecordingSet (+ SupervisionSet) file as ``split``;
    ``kwargs`` go to :func:`data_prep.importers.common.write_split`."""
    from lhotse import CutSet, RecordingSet, SupervisionSet

    if (cuts is None) == (recordings is None):
        raise ImportProblem("give either a CutSet (--cuts) or a RecordingSet (--recordings, with --supervisions)")
    if normalization not in NORMALIZERS:
        raise ImportProblem(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZERS)}")
    if cuts is not None:
        inputs, cut_set = [cuts], CutSet.from_file(cuts)
    else:
        inputs = [recordings] + ([supervisions] if supervisions else [])
        cut_set = CutSet.from_manifests(RecordingSet.from_file(recordings),
                                        SupervisionSet.from_file(supervisions) if supervisions else None)
    items = lhotse_items(cut_set, NORMALIZERS[normalization], unlabeled, str(inputs[-1]))
    return write_split(items, split=split, source="lhotse", inputs=inputs,
                       normalization="none" if items[0].text is None else normalization, **kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuts", help="a CutSet manifest (jsonl, jsonl.gz)")
    parser.add_argument("--recordings", help="a RecordingSet manifest")
    parser.add_argument("--supervisions", help="the SupervisionSet of --recordings (without it: unlabeled)")
    parser.add_argument("--unlabeled", action="store_true", help="whole cuts, supervisions ignored, no text")
    parser.add_argument("--normalization", default="generic", choices=sorted(NORMALIZERS), help="text rules")
    add_audio_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli("data_prep.importers.lhotse_manifest", argv, lambda: [import_lhotse(
        args.split, args.cuts, args.recordings, args.supervisions, args.unlabeled, args.normalization,
        **audio_kwargs(args))])


if __name__ == "__main__":
    sys.exit(main())
