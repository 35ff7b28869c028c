"""examples/joint/curves.py: each point at the updates its own loss had made."""

import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def curves():
    return load_script("examples/joint/curves.py", "joint_curves")


def _run(tmp_path, name, pretrain, unsup, sup, valid_at):
    run = tmp_path / name
    (run / "hydra").mkdir(parents=True)
    lines = [f"[t][fairseq_cli.train][INFO] - {{'task': {{'_name': 'sslasr_joint', 'pretrain_updates': {pretrain}, "
             f"'unsup_updates': {unsup}, 'sup_updates': {sup}}}}}"]
    for n in valid_at:
        lines.append(f"[t][train_inner][INFO] - epoch 001: sup_loss={n / 10}, unsup_accuracy=0.5, num_updates={n}")
        lines.append(f"[t][valid][INFO] - epoch 001 | valid on 'valid' subset | loss {n} | uer {100 - n / 100} | num_updates {n}")
    (run / "hydra" / "hydra_train.log").write_text("\n".join(lines) + "\n")
    return run


def test_ctc_and_contrastive_updates_by_each_schedule(curves, tmp_path):
    one = _run(tmp_path, "one", 0, 1, 1, [250, 500])       # U S U S ...
    five = _run(tmp_path, "five", 0, 5, 1, [600, 1201])    # U U U U U S ...
    two_stage = _run(tmp_path, "two", 1000, 0, 1, [500, 1500])  # 1000 contrastive, then CTC only
    sup_only = _run(tmp_path, "sup", 0, 0, 1, [250])
    curves.main(["--out", str(tmp_path / "c.png"), "--tsv-dir", str(tmp_path / "tsv"),
                 f"one={one}", f"five={five}", f"two={two_stage}", f"sup={sup_only}"])
    assert (tmp_path / "c.png").stat().st_size > 0

    def table(name):
        rows = (tmp_path / "tsv" / f"{name}.tsv").read_text().splitlines()
        assert rows[0] == "num_updates\tctc_updates\tcontrastive_updates\tvalid_uer\tvalid_loss"
        return [tuple(float(x) for x in row.split("\t")) for row in rows[1:]]

    assert [r[:3] for r in table("one")] == [(250, 125, 125), (500, 250, 250)]
    assert [r[:3] for r in table("five")] == [(600, 100, 500), (1201, 200, 1001)]
    assert [r[:3] for r in table("two")] == [(500, 0, 500), (1500, 500, 1000)]
    assert [r[:3] for r in table("sup")] == [(250, 250, 0)]
    assert table("five")[1][3:] == (100 - 12.01, 1201)
    assert curves.Run(five / "hydra" / "hydra_train.log").points("train", "sup_loss", "sup") == [(100, 60.0), (200, 120.1)]


def test_a_run_that_is_not_a_joint_run_is_refused(curves, tmp_path):
    run = tmp_path / "ctc"
    (run / "hydra").mkdir(parents=True)
    (run / "hydra" / "hydra_train.log").write_text("[t][fairseq_cli.train][INFO] - {'task': {'_name': 'sslasr_audio_ctc'}}\n")
    with pytest.raises(SystemExit, match="does not print a joint task's pretrain_updates"):
        curves.main(["--out", str(tmp_path / "c.png"), f"ctc={run}"])
    with pytest.raises(SystemExit, match="NAME=RUN_DIR"):
        curves.main(["--out", str(tmp_path / "c.png"), str(run)])
