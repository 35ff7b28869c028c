"""sslasr_plugin: semi-supervised speech recognition for fairseq, as a user dir.

    fairseq-hydra-train --config-dir examples/ctc --config-name scratch_fbank \
        common.user_dir=sslasr_plugin task.data=$PWD/data/demo

Importing the package registers its tasks, models, criterions and optimizers with fairseq
(once) and applies the plugin's few patches to fairseq (``patches``: safe checkpoint loading,
atomic checkpoint copies, kept remainder batches, masks that follow ``common.seed``).
"""
from . import patches

patches.apply()

from . import criterions, models, optim, tasks  # noqa: E402,F401  (registration)
