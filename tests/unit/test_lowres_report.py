"""The low-resource benchmark's page (examples/lowres/local.py): arms paired with their controls,
seeds pooled in the interval, labeled minutes from the manifests, the two plots."""
import json

import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def local():
    return load_script("examples/lowres/local.py", "lowres_local")


def test_names_pair_arms_with_their_controls(local):
    assert local.control_of("labeled_10min/slimipl_hard_s2") == "labeled_10min/control_s2"
    assert local.control_of("labeled_1h/soft_ctc_mix_s1") == "labeled_1h/control_s1"
    assert local.control_of("labeled_10min/baseline_d0.1_m0.2_s1") is None
    assert local.control_of("labeled_10min/control_s1") is None
    assert local.arm_of("labeled_10min/slimipl_lm_s3") == ("labeled_10min/slimipl_lm", 3)
    assert local.arm_of("oracle") == ("oracle", None)
    # CSL and CE-PL fine-tunings against the control, and CSL against CE-PL (the paper's comparison)
    assert local.control_of("labeled_10min/csl_frame_s2") == "labeled_10min/control_s2"
    assert local.control_of("labeled_10min/ce_pl_frame_s1") == "labeled_10min/control_s1"
    assert local.rival_of("labeled_10min/csl_frame_s2") == "labeled_10min/ce_pl_frame_s2"
    assert local.rival_of("labeled_10min/ce_pl_frame_s2") is None and local.rival_of("control_s1") is None
    # wav2vec 2.0 students too (their pre-trainings are not decoded, so never paired)
    assert local.control_of("labeled_10min/w2v2_both_ctc_s3") == "labeled_10min/control_s3"
    assert local.arm_of("labeled_10min/w2v2_ctc_s1") == ("labeled_10min/w2v2_ctc", 1)
    assert local.control_of("labeled_10min/joint_s2") == "labeled_10min/control_s2"
    assert local.control_of("labeled_10min/hubert_ctc_s1") == "labeled_10min/control_s1"


def test_combine_joins_splits_of_one_root_and_refuses_others(local, tmp_path):
    (tmp_path / "a.tsv").write_text("/root\na/1.wav\t100\n")
    (tmp_path / "b.tsv").write_text("/root\nb/1.wav\t200\nb/2.wav\t300\n")
    (tmp_path / "a.ltr").write_text("A |\n")  # b has no transcripts: the result has none either
    local.combine(tmp_path, "ab", ["a", "b"])
    assert (tmp_path / "ab.tsv").read_text() == "/root\na/1.wav\t100\nb/1.wav\t200\nb/2.wav\t300\n"
    assert not (tmp_path / "ab.ltr").exists()
    (tmp_path / "b.ltr").write_text("B |\nC |\n")
    local.combine(tmp_path, "ab", ["a", "b"])
    assert (tmp_path / "ab.ltr").read_text() == "A |\nB |\nC |\n"
    (tmp_path / "c.tsv").write_text("/elsewhere\nc/1.wav\t100\n")
    with pytest.raises(SystemExit, match="c.tsv has root '/elsewhere'.*share one audio root"):
        local.combine(tmp_path, "ac", ["a", "c"])
    with pytest.raises(SystemExit, match="d.tsv does not exist"):
        local.combine(tmp_path, "ad", ["a", "d"])


def test_curves_get_a_colour_per_arm_and_a_line_style_per_seed(local):
    names = [f"labeled_10min/{arm}_s{seed}" for arm in ("baseline_d0.2_m0.4", "control", "slimipl_hard")
             for seed in (1, 2, 3)] + [f"labeled_10min/arm{k}_s1" for k in range(9)] + ["oracle_s1"]
    styles = local.curve_styles(names)
    by_arm = {}
    for name in names:
        by_arm.setdefault(local.arm_of(name)[0], set()).add(styles[name]["color"])
    assert all(len(colours) == 1 for colours in by_arm.values())
    assert len({next(iter(c)) for c in by_arm.values()}) == len(by_arm) == 13  # no two arms alike
    assert [styles[f"labeled_10min/control_s{seed}"]["linestyle"] for seed in (1, 2, 3)] == ["-", "--", ":"]
    # past tab20's twenty colours the marker tells the arms apart
    many = local.curve_styles([f"labeled_10min/arm{k}_s1" for k in range(45)])
    assert len({(st["color"], st["marker"]) for st in many.values()}) == 45


def test_references_of_another_corpus_are_named_by_count_and_first_differing_line(local):
    assert local._first_difference("a\nb\nc\n", "a\nx\n") == "3 utterances there, 2 here; line 2 is 'b' there, 'x' here"
    assert local._first_difference("a\nb\n", "a\nb\nc\n") == "2 utterances there, 3 here; they agree on the first 2 lines"


def test_subset_minutes_sum_the_manifest(local, tmp_path):
    (tmp_path / "labeled.tsv").write_text(f"{tmp_path}\na.wav\t480000\nb.wav\t480000\n")
    assert local.subset_minutes(tmp_path, "labeled") == pytest.approx(1.0)
    assert local.subset_minutes(tmp_path, "missing") is None


SPLITS = ("test", "test_ood")


def _run(store, name, hyps, minutes):
    run = store / name
    run.mkdir(parents=True)
    for split in SPLITS:
        (run / f"{split}.hyp").write_text("".join(h + "\n" for h in hyps))
    (run / "valid_curve.tsv").write_text("num_updates\tloss\tuer\twer\n5\t9.0\t60.0\t90.0\n10\t8.0\t50.0\t80.0\n")
    facts = {"updates": 10, "best_valid_cer": 50.0, "wall_seconds": 120.0, "pl_cer_last": None,
             "pl_cer_mean": None, "train_subset": name.split("/")[0], "train_minutes": minutes}
    (run / "facts.json").write_text(json.dumps(facts))


def test_page_pools_seeds_against_controls(local, tmp_path):
    store, page = tmp_path / "page" / "lowres", tmp_path / "page" / "lowres.md"
    (store / "refs").mkdir(parents=True)
    for split in SPLITS:
        (store / "refs" / f"{split}.txt").write_text("AB CD\nEF\n")  # 7 characters
    for subset, minutes in (("labeled_10min", 10.0), ("labeled_1h", 60.0)):
        _run(store, f"{subset}/control_s1", ["AB CD", "XF"], minutes)     # 1 error
        _run(store, f"{subset}/control_s2", ["AX CD", "EF"], minutes)     # 1 error
        _run(store, f"{subset}/slimipl_hard_s1", ["AB CD", "EF"], minutes)  # 0 errors
        _run(store, f"{subset}/slimipl_hard_s2", ["AB CD", "EX"], minutes)  # 1 error
    (store / "notes.md").write_text("What the figures say.\n")
    local.render(store, page, "the command")
    text = page.read_text()
    assert text.endswith("## Status and reading\n\nWhat the figures say.\n")
    row = next(line for line in text.splitlines() if line.startswith("| labeled_10min/slimipl_hard |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[2] == "1, 2"
    assert cells[4] == "7.14 (0.00-14.29)"  # test_ood CER per seed: 0/7 and 1/7
    # over both seeds: arm 1 error, controls 2, over 14 characters: -7.14 points, -50% of 14.29.
    # The interval resamples the 2 utterances (errors summed over seeds: differences -1 of 10
    # characters and 0 of 4): -10.00 (the first twice), -7.14 or 0.00 (the second twice), each
    # extreme with probability 1/4, so they are its 2.5 and 97.5 percentiles.
    assert cells[6] == "-7.14 [-10.00, +0.00] (-50% rel.)"
    # and each seed's own difference, the training seeds' spread: 0/7 - 1/7 and 1/7 - 1/7
    assert cells[7] == cells[8] == "-14.29, +0.00"
    assert "| labeled_10min/control_s1 | 10.0 |" in text
    assert (tmp_path / "page" / "lowres_minutes.png").stat().st_size > 0
    assert "lowres_minutes.png" in text and "the command" in text


def test_page_tabulates_the_fixed_label_runs_by_their_labels_cer(local, tmp_path):
    store, page = tmp_path / "page" / "lowres", tmp_path / "page" / "lowres.md"
    (store / "refs").mkdir(parents=True)
    for split in SPLITS:
        (store / "refs" / f"{split}.txt").write_text("AB CD\nEF\n")  # 7 characters
    _run(store, "labeled_10min/control_s1", ["AB CD", "XF"], 10.0)  # 1 error
    _run(store, "labeled_10min/slimipl_fixed_ood_baseline_s1", ["AB CD", "XF"], 10.0)  # 1 error
    _run(store, "labeled_10min/slimipl_fixed_ood_truth50_s1", ["AB CD", "EF"], 10.0)  # 0 errors
    _run(store, "labeled_10min/slimipl_fixed_ood_joint_s1", ["AB CD", "EF"], 10.0)  # no label_quality.md: left out
    for teacher, text in (("baseline", "unlabeled_ood: 9 utterances, label CER 41.46, 0.95 characters"),
                          ("truth50", "unlabeled_ood.pl_truth50_s1.ltr: 9 utterances, label CER 20.70, 5 (50%) equal")):
        (store / f"labeled_10min/ood_labels_{teacher}_s1").mkdir(parents=True)
        (store / f"labeled_10min/ood_labels_{teacher}_s1/label_quality.md").write_text(text + "\n")
    local.render(store, page, "the command")
    lines = page.read_text().splitlines()
    head = lines.index("| teacher | seed | label CER | test_ood CER | test_ood ΔCER vs control [95% CI] | test ΔCER vs control |")
    assert lines[head + 2].startswith("| truth50 | 1 | 20.70 | 0.00 | -14.29 [")  # best labels first
    assert lines[head + 3].startswith("| baseline | 1 | 41.46 | 14.29 | +0.00 [+0.00, +0.00]")
    assert not lines[head + 4].startswith("|")


def test_best_point_from_the_kept_curves_when_the_runs_are_gone(local, tmp_path):
    """On a machine without exp/, the best sweep point is read from the validation curves kept
    beside the page (lowest valid CER wins)."""
    store, exp = tmp_path / "store", tmp_path / "exp"
    for point, uers in (("d0.1_m0.2", "40.0 31.5"), ("d0.2_m0.4", "38.0 30.25 33.0")):
        run = store / f"baseline_{point}_s1"
        run.mkdir(parents=True)
        rows = [f"{250 * (i + 1)}\t1.0\t{u}\t90.0" for i, u in enumerate(uers.split())]
        (run / "valid_curve.tsv").write_text("num_updates\tloss\tuer\twer\n" + "\n".join(rows) + "\n")
    assert local.best_point(exp, 1, ["d0.1_m0.2", "d0.2_m0.4"], store) == "d0.2_m0.4"
    assert local.best_point(exp, 1, ["d0.1_m0.2", "d0.3_m0.6"], store) == "d0.1_m0.2"
    with pytest.raises(SystemExit, match="no finished sweep run"):
        local.best_point(exp, 2, ["d0.1_m0.2"], store)


def _config(checkpoint="None", model="{'_name': 'x', 'dropout': 0.2, 'attention_dropout': 0.1, 'mask_prob': 0.4}"):
    return ("[2026-12-06 09:00:00,000][fairseq_cli.train][INFO] - {'_name': None, 'checkpoint': {'_name': None, "
            f"'finetune_from_model': {checkpoint}}}, 'model': {model}, 'task': {{'_name': 'y'}}}}\n")


def test_sweep_point_is_the_start_baselines_else_the_models_dropout_and_masking(local):
    # a PL arm or control: the baseline it continues, not its own overrides
    arm = _config("'/e/labeled_10min/baseline_d0.3_m0.6_s2/checkpoint_best.pt'")
    assert local.sweep_point(arm) == "d0.3_m0.6"
    # a frame teacher: the baseline its encoder starts from (finetune_from_model printed as None)
    teacher = _config(model="{'_name': 'frame', 'init_encoder': '/e/baseline_d0.2_m0.4_s1/checkpoint_best.pt', "
                            "'dropout': 0.1, 'mask_prob': 0.1}")
    assert local.sweep_point(teacher) == "d0.2_m0.4"
    # a baseline or a fine-tuning after pre-training: its own dropout and masking, written as the runner names points
    assert local.sweep_point(_config()) == "d0.2_m0.4"
    assert local.sweep_point(_config(model="{'dropout': 0.30, 'mask_prob': 0.6}")) == "d0.3_m0.6"
    # a checkpoint of something else than a baseline says nothing; no config, no point
    assert local.sweep_point(_config("'/e/csl_frame_pretrain_s1/checkpoint_last.pt'")) == "d0.2_m0.4"
    assert local.sweep_point("") is None and local.sweep_point(_config(model="{'_name': 'z'}")) is None


def test_check_point_refuses_a_run_of_another_sweep_point(local, tmp_path):
    run, store_run = tmp_path / "exp" / "control_s1", tmp_path / "store" / "control_s1"
    local.check_point(run, store_run, "d0.3_m0.6", "d0.2_m0.4 d0.3_m0.6")  # not started, not kept: free
    (run / "hydra").mkdir(parents=True)
    (run / "hydra" / "hydra_train.log").write_text(_config("'/e/baseline_d0.2_m0.4_s1/checkpoint_best.pt'"))
    local.check_point(run, store_run, "d0.2_m0.4", "d0.2_m0.4")
    with pytest.raises(SystemExit, match=r"control_s1 started from sweep point d0.2_m0.4 .*now starts from d0.3_m0.6 "
                                         r"\(the best of --sweep \"d0.2_m0.4 d0.3_m0.6\" on valid\): pass --sweep d0.2_m0.4"):
        local.check_point(run, store_run, "d0.3_m0.6", "d0.2_m0.4 d0.3_m0.6")
    # kept in the store (trained on another machine): its facts say which point
    (run / "hydra" / "hydra_train.log").unlink()
    store_run.mkdir(parents=True)
    (store_run / "facts.json").write_text(json.dumps({"updates": 3000, "sweep_point": "d0.2_m0.4"}))
    with pytest.raises(SystemExit, match=r"started from sweep point d0.2_m0.4 \(.*facts.json\)"):
        local.check_point(run, store_run, "d0.3_m0.6", "d0.2_m0.4 d0.3_m0.6")
    local.check_point(run, store_run, "d0.2_m0.4", "d0.2_m0.4")
    # kept without a record of it: refused, with the fix
    (store_run / "facts.json").write_text(json.dumps({"updates": 3000}))
    with pytest.raises(SystemExit, match=r"does not say which sweep point control_s1 started from .*add it"):
        local.check_point(run, store_run, "d0.2_m0.4", "d0.2_m0.4")


def test_label_quality_ranks_labels_by_confidence_and_voice(local, tmp_path):
    # four utterances: the two of voice A are labeled right and confidently, B's two wrongly
    refs = ["AB CD", "EF", "GH IJ", "KL"]
    hyps = ["AB CD", "EF", "GX IJ", "XY"]  # CER 0, 0, 1/5, 2/2
    tokens = [[-0.1] * 4, [-0.2] * 2, [-0.5] * 4, [-2.0] * 2]
    gen = tmp_path / "generate-unlabeled_ood.txt"
    gen.write_text("".join(f"T-{i}\t{r}\nH-{i}\t{sum(p)}\t{h}\nD-{i}\t{sum(p)}\t{h}\nP-{i}\t{' '.join(map(str, p))}\n"
                           for i, (r, h, p) in enumerate(zip(refs, hyps, tokens))))
    data = tmp_path / "data"
    data.mkdir()
    (data / "unlabeled_ood.tsv").write_text("/root\n" + "".join(f"wav/u-{i}.wav\t16000\n" for i in range(4)))
    (data / "corpus.json").write_text(json.dumps({"utterances": [
        {"id": f"u-{i}", "split": "unlabeled_ood", "voice": "A" if i < 2 else "B", "variant": "m1"} for i in range(4)]}))
    md = local.label_quality(gen, data, "unlabeled_ood")
    assert "label CER 21.43" in md  # 3 errors of 14 reference characters
    assert "1.000 characters (spaces included) per reference character" in md
    row = next(line for line in md.splitlines() if line.startswith("| mean token log-prob |"))
    # Spearman: confidence ranks 3 2 1 0, accuracy ranks 2.5 2.5 1 0 (tied): 4.5 / sqrt(5 x 4.5);
    # most confident 25% (1 utterance) and 50% (2): right; 75%: 1 error of 12 characters
    assert row.split("|")[2:7] == [" 0.95 ", " 0.00 ", " 0.00 ", " 8.33 ", " 21.43 "]
    assert "| A m1 | 2 | 0.00 |" in md and "| B m1 | 2 | 42.86 |" in md
    with pytest.raises(SystemExit, match="decode the whole split"):
        (data / "unlabeled_ood.tsv").write_text("/root\nwav/u-0.wav\t16000\n")
        local.label_quality(gen, data, "unlabeled_ood")


def test_by_voice_splits_each_runs_cer_by_voice_and_pools_seeds(local, tmp_path):
    refs = ["AB CD", "EF", "GH IJ", "KL"]  # voices A A B B: 7 and 7 reference characters
    store, data = tmp_path / "store", tmp_path / "data"
    (store / "refs").mkdir(parents=True)
    (store / "refs" / "test_ood.txt").write_text("\n".join(refs) + "\n")
    for name, hyps in (("arm_s1", ["AB CD", "EF", "GX IJ", "XY"]), ("arm_s2", ["AX CD", "EF", "GH IJ", "KL"]),
                       ("control_s1", ["AB CD", "XF", "GH IJ", "KL"])):
        (store / name).mkdir()
        (store / name / "facts.json").write_text("{}")
        (store / name / "test_ood.hyp").write_text("\n".join(hyps) + "\n")
    data.mkdir()
    (data / "test_ood.tsv").write_text("/root\n" + "".join(f"wav/t-{i}.wav\t16000\n" for i in range(4)))
    utts = [{"id": f"t-{i}", "split": "test_ood", "text": r, "voice": "A" if i < 2 else "B", "variant": "f1"}
            for i, r in enumerate(refs)]
    (data / "corpus.json").write_text(json.dumps({"utterances": utts}))
    md = local.by_voice(store, data, "test_ood", ["arm", "control_s1"]).splitlines()
    assert md[0] == "| voice (test_ood) | utterances | arm (2 seeds) | control_s1 |"
    # arm: A has 1 error in 14 characters over the two seeds, B 3 in 14; the control 1 of 7 on A
    assert md[2:] == ["| A f1 | 2 | 7.14 | 14.29 |", "| B f1 | 2 | 21.43 | 0.00 |", "| all | 4 | 14.29 | 7.14 |"]
    with pytest.raises(SystemExit, match="no run 'csl' in"):
        local.by_voice(store, data, "test_ood", ["csl"])
    (store / "arm_s2" / "test_ood.hyp").unlink()
    with pytest.raises(SystemExit, match="arm_s2 has no test_ood.hyp: decode test_ood"):
        local.by_voice(store, data, "test_ood", ["arm"])
    (store / "arm_s2" / "test_ood.hyp").write_text("AX CD\nEF\nGH IJ\nKL\n")
    utts[2]["text"] = "GH IK"  # another corpus: its row 3 is not the store's reference line 3
    (data / "corpus.json").write_text(json.dumps({"utterances": utts}))
    with pytest.raises(SystemExit, match=r"row 3 \(wav/t-2.wav\) is 'GH IK' in corpus.json"):
        local.by_voice(store, data, "test_ood", ["arm"])


def test_frame_agreement_counts_frames_and_pairs_of_frames(local, tmp_path):
    labels, reference = tmp_path / "unlabeled.plab", tmp_path / "unlabeled.unit"
    labels.write_text("a_1 a_1\nb_1 b_1\n")
    reference.write_text("a_1 a_2\nb_1 b_1\n")
    got = local.frame_agreement(labels, reference)
    # frames: 3 of 4 in the reference's class, 4 of 4 of its letter; ordered pairs of distinct
    # frames: 4 share a label (a_1 a_1 twice, b_1 b_1 twice), 2 of them a reference class (the
    # b_1 pairs); of the 8 that do not share a label none shares a reference class; the 2 pairs
    # that share a reference class both share a label
    assert got == {"frames": 4, "accuracy": 0.75, "letter_accuracy": 1.0, "positives_right": 0.5,
                   "negatives_same_class": 0.0, "same_class_same_label": 1.0}
    reference.write_text("a_1 a_2\nb_1\n")
    with pytest.raises(SystemExit, match=f"{labels}:2 has 2 frames and {reference}:2 1"):
        local.frame_agreement(labels, reference)
    reference.write_text("c_1 c_1\nc_2 c_2\n")  # another class inventory
    with pytest.raises(SystemExit, match="share no class"):
        local.frame_agreement(labels, reference)


def test_same_classes_compares_the_unit_to_class_maps(local, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, units in ((a, {"a | b 1": "a_1", "b a | 2": "b_1"}), (b, {"b a | 2": "b_1", "a | b 1": "a_1"})):
        d.mkdir()
        (d / "units.json").write_text(json.dumps({"units": units, "fit_split": d.name}))
    local.same_classes(a, b)  # the same map, whatever else differs
    (b / "units.json").write_text(json.dumps({"units": {"a | b 1": "a_2", "b a | 2": "b_1"}}))
    with pytest.raises(SystemExit, match=f"the classes of {a} are not those of {b}"):
        local.same_classes(a, b)
    with pytest.raises(SystemExit, match="units.json does not exist"):
        local.same_classes(a, tmp_path)


def test_weighed_subsets_repeat_the_small_split_to_weigh_as_much_audio(local, tmp_path):
    def manifest(name, seconds):
        rows = [f"{name}-{i}.wav\t{16000 * s}" for i, s in enumerate(seconds)]
        (tmp_path / f"{name}.tsv").write_text("\n".join(["/audio"] + rows) + "\n")

    manifest("unlabeled", [60] * 70)  # 70 min
    manifest("unlabeled_ood", [60] * 10)  # 10 min: named 7 times
    assert local.weighed_subsets(tmp_path, "unlabeled", "unlabeled_ood") == ",".join(["unlabeled"] + ["unlabeled_ood"] * 7)
    manifest("unlabeled_ood", [60] * 100)  # larger than the big one: named once, never dropped
    assert local.weighed_subsets(tmp_path, "unlabeled", "unlabeled_ood") == "unlabeled,unlabeled_ood"
    with pytest.raises(SystemExit, match=r"gone\.tsv is missing or holds no audio: build the corpus first"):
        local.weighed_subsets(tmp_path, "unlabeled", "gone")


def test_labels_file_spells_the_hypotheses_as_ltr_lines_in_manifest_order(local, tmp_path):
    # fairseq-generate writes utterances out of order; an empty hypothesis is an empty line
    gen = tmp_path / "generate-unlabeled_ood.txt"
    gen.write_text("T-1\tNO\nH-1\t-1.0\t\nD-1\t-1.0\t\nT-0\tAB CD\nH-0\t-2.0\tAB CX\nD-0\t-2.0\tAB CX\n"
                   "T-2\tE\nH-2\t-0.5\tE\nD-2\t-0.5\tE\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "unlabeled_ood.tsv").write_text("/root\n" + "".join(f"wav/u-{i}.wav\t16000\n" for i in range(3)))
    out = local.labels_file(gen, data, "unlabeled_ood", "teacher.ltr")
    assert out == data / "unlabeled_ood.teacher.ltr"
    assert out.read_text().splitlines() == ["A B | C X |", "", "E |"]
    assert local.labels_file(gen, data, "unlabeled_ood", "teacher.ltr") == out  # the same labels: left as they are
    out.write_text("mine\n")  # a file of other labels is never overwritten
    with pytest.raises(SystemExit, match="exists and holds other labels"):
        local.labels_file(gen, data, "unlabeled_ood", "teacher.ltr")
    assert out.read_text() == "mine\n"
    (data / "unlabeled_ood.tsv").write_text("/root\n" + "".join(f"wav/u-{i}.wav\t16000\n" for i in range(4)))
    with pytest.raises(SystemExit, match="has 3 decoded utterances, .*unlabeled_ood.tsv 4: decode the whole split"):
        local.labels_file(gen, data, "unlabeled_ood", "other.ltr")
    assert not (data / "unlabeled_ood.other.ltr").exists()


def test_labels_file_puts_true_transcripts_on_a_drawn_share_and_labels_cer_measures_them(local, tmp_path):
    n = 20
    gen = tmp_path / "generate-unlabeled_ood.txt"
    gen.write_text("".join(f"T-{i}\tAB CD\nH-{i}\t-1.0\tAB CX\nD-{i}\t-1.0\tAB CX\n" for i in range(n)))
    data = tmp_path / "data"
    data.mkdir()
    (data / "unlabeled_ood.tsv").write_text("/root\n" + "".join(f"wav/u-{i}.wav\t16000\n" for i in range(n)))
    (data / "unlabeled_ood.ltr").write_text("A B | C D |\n" * n)
    with pytest.raises(SystemExit, match="labels-file"):
        local.labels_cer(data, "unlabeled_ood", "t25.ltr")  # not written yet
    out = local.labels_file(gen, data, "unlabeled_ood", "t25.ltr", truth_percent=25, seed=3)
    lines = out.read_text().splitlines()
    truth = [i for i, line in enumerate(lines) if line == "A B | C D |"]
    assert len(truth) == 5 and all(lines[i] == "A B | C X |" for i in range(n) if i not in truth)
    # the same draw again (left as it is), another seed draws other rows (refused: other labels)
    assert local.labels_file(gen, data, "unlabeled_ood", "t25.ltr", truth_percent=25, seed=3) == out
    with pytest.raises(SystemExit, match="holds other labels"):
        local.labels_file(gen, data, "unlabeled_ood", "t25.ltr", truth_percent=25, seed=4)
    # 15 of 20 lines with 1 error in 5 characters (spaces included): 15 / 100
    assert local.labels_cer(data, "unlabeled_ood", "t25.ltr") == (
        "unlabeled_ood.t25.ltr: 20 utterances, label CER 15.00, 5 (25%) equal to their true transcript\n")
    local.labels_file(gen, data, "unlabeled_ood", "t0.ltr")
    assert local.labels_cer(data, "unlabeled_ood", "t0.ltr").startswith("unlabeled_ood.t0.ltr: 20 utterances, label CER 20.00, 0 (0%)")
    with pytest.raises(SystemExit, match="give 0 to 100"):
        local.labels_file(gen, data, "unlabeled_ood", "bad.ltr", truth_percent=120)
    (data / "unlabeled_ood.ltr").write_text("A B | C D |\n" * (n - 1))
    with pytest.raises(SystemExit, match=r"unlabeled_ood\.ltr has 19 lines, .* 20 rows: rebuild the corpus"):
        local.labels_file(gen, data, "unlabeled_ood", "t50.ltr", truth_percent=50)
    assert not (data / "unlabeled_ood.t50.ltr").exists()
