"""The plugin imports as an installed package and as a fairseq user dir, in either order."""
import sys

from tests.helpers import REPO, run_cli

REGISTERED = (
    "from fairseq.models import MODEL_REGISTRY; from fairseq.tasks import TASK_REGISTRY\n"
    "assert {'sslasr_ctc', 'sslasr_wav2vec2'} <= set(MODEL_REGISTRY)\n"
    "assert 'sslasr_audio_ctc' in TASK_REGISTRY\n"
)
USER_DIR = (
    "from argparse import Namespace; from fairseq import utils\n"
    f"utils.import_user_module(Namespace(user_dir={str(REPO / 'sslasr_plugin')!r}))\n"
)


def test_installed_package_then_user_dir(tmp_path):
    # Run outside the repository, so that `import sslasr_plugin` finds the installed package.
    code = "import sslasr_plugin\n" + USER_DIR + USER_DIR + REGISTERED + "print(sslasr_plugin.__file__)"
    out = run_cli([sys.executable, "-c", code], cwd=tmp_path).stdout
    assert out.strip() == str(REPO / "sslasr_plugin" / "__init__.py")


def test_user_dir_then_installed_package(tmp_path):
    code = USER_DIR + "import sys; before = sys.modules['sslasr_plugin']\nimport sslasr_plugin\n" \
        "assert sslasr_plugin is before\n" + REGISTERED
    run_cli([sys.executable, "-c", code], cwd=tmp_path)
