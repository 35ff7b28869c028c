"""sslasr_plugin: semi-supervised speech recognition for fairseq, as a user dir.

    fairseq-hydra-train --config-dir examples/ctc --config-name scratch_fbank \
        common.user_dir=sslasr_plugin task.data=$PWD/data/demo

Importing the package registers its tasks, models and criterions with fairseq (once) and
allow-lists, for torch's weights_only loader, the classes fairseq checkpoints contain.
"""
from . import checkpoint  # noqa: F401
from . import criterions, models, optim, tasks  # noqa: F401
