"""Real corpora in: one module per source, each a library function and a thin command line.

    librispeech      LibriSpeech subsets (SPEAKER/CHAPTER/*.flac + *.trans.txt), any subset to any split
    librilight       Libri-Light's limited-resource labeled sets: 10min, 1h, 10h
    unlabeled        any folder of audio (Libri-Light small/medium/large), optionally cut into chunks
    table            audio files plus a CSV/TSV transcript table
    lhotse_manifest  lhotse recordings + supervisions, or a CutSet

All write what data_prep.corpus writes ({split}.tsv/.wrd/.ltr, dict.ltr.txt) plus import.json;
common.py holds what they share.
"""
