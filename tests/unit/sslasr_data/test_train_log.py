"""sslasr_data.train_log: the numbers of fairseq-hydra-train logs, as every results page reads them."""
from sslasr_data.train_log import config_value, fields, log_text, read_log, wall_seconds

CONFIG = ("[2026-12-05 04:33:35,004][fairseq_cli.train][INFO] - {'_name': None, 'dataset': {'_name': None, "
          "'train_subset': 'labeled_10min', 'max_tokens': 640000}, 'task': {'_name': 'sslasr_joint', 'data': "
          "'/data/demo', 'eval_wer_config': {'_name': None, 'beam': 5}, 'unsup_updates': 5, 'sup_updates': 1}, "
          "'criterion': {'_name': 'x', 'pretrain_updates': 7}}")
LOG = "\n".join([
    CONFIG,
    "[2026-12-05 04:36:30,949][train_inner][INFO] - epoch 001:     50 / 912 unsup_loss=6.713, loss=484.816, "
    "lr=2.5e-05, num_updates=50, gnorm=40.294, train_wall=124",
    "[2026-12-05 04:44:43,487][valid][INFO] - epoch 001 | valid on 'valid' subset | loss 278.233 | uer 90.785 | "
    "wer 100 | num_updates 250",
    "[2026-12-05 04:44:45,000][valid][INFO] - epoch 001 | valid on 'test' subset | loss 1 | uer 50 | num_updates 250",
    "[2026-12-05 04:50:00,000][train][INFO] - epoch 001 | loss 300.5 | num_updates 300 | wall 1584",
])


def test_fields_of_train_and_valid_lines():
    assert fields("unsup_loss=6.713, loss=484.816, lr=2.5e-05, num_updates=50, gnorm=40.294") == {
        "unsup_loss": 6.713, "loss": 484.816, "lr": 2.5e-05, "num_updates": 50, "gnorm": 40.294}
    assert fields("| loss 278.233 | uer 90.785 | wer 100 | num_updates 250") == {
        "loss": 278.233, "uer": 90.785, "wer": 100, "num_updates": 250}
    assert fields("epoch 001: 50 / 912 version 1.2.3, x=nan") == {}  # no number fields


def test_read_log_splits_validation_on_the_subset_and_training_lines(tmp_path):
    log = tmp_path / "hydra_train.log"
    log.write_text(LOG + "\n")
    records = read_log(log)
    assert records["valid"] == [{"epoch": 1, "loss": 278.233, "uer": 90.785, "wer": 100, "num_updates": 250}]
    assert [r["num_updates"] for r in records["train"]] == [50, 300]  # interval line, then the epoch's summary
    assert [r["num_updates"] for r in read_log(log, epoch_summaries=False)["train"]] == [50]
    assert read_log(log, subset="test")["valid"][0]["uer"] == 50
    assert read_log(tmp_path / "absent.log") == {"valid": [], "train": []}


def test_config_value_reads_one_group_only(tmp_path):
    log = tmp_path / "hydra_train.log"
    log.write_text(LOG + "\n")
    assert config_value(log, "task", "data") == "/data/demo"
    assert config_value(log, "task", "unsup_updates") == "5"
    assert config_value(log, "task", "sup_updates") == "1"  # not unsup_updates' value
    assert config_value(log, "dataset", "train_subset") == "labeled_10min"
    # a key of a later group, or of a group the log does not print, is not the task's
    assert config_value(log, "task", "pretrain_updates") is None
    assert config_value(log, "criterion", "pretrain_updates") == "7"
    assert config_value(log, "model", "data") is None
    assert config_value(tmp_path / "absent.log", "task", "data") is None


def test_wall_seconds_sums_each_launch_of_a_resumed_run(tmp_path):
    log = tmp_path / "hydra_train.log"
    log.write_text(LOG + "\n")  # one launch: 04:33:35.004 to 04:50:00.000
    assert abs(wall_seconds(log) - (16 * 60 + 24.996)) < 1e-6
    # killed, resumed an hour later: the gap between the launches is not counted
    resumed = LOG.replace("2026-12-05 04:", "2026-12-05 05:").replace("2026-12-05 05:50:00,000", "2026-12-05 05:40:00,000")
    log.write_text(LOG + "\nTraceback: killed\n" + resumed + "\n")
    assert abs(wall_seconds(log) - (16 * 60 + 24.996) - (6 * 60 + 24.996)) < 1e-6
    assert wall_seconds(tmp_path / "absent.log") is None
    (tmp_path / "plain.log").write_text("no stamps\n")
    assert wall_seconds(tmp_path / "plain.log") is None


def test_each_reader_takes_the_text_once_read(tmp_path):
    log = tmp_path / "hydra_train.log"
    log.write_text(LOG + "\n")
    text = log_text(log)
    assert read_log(None, text=text) == read_log(log) and read_log(None, text=text)["valid"]
    assert wall_seconds(None, text=text) == wall_seconds(log)
    assert config_value(None, "task", "data", text) == "/data/demo"
    assert log_text(tmp_path / "absent.log") == "" and read_log(None, text="") == {"valid": [], "train": []}
