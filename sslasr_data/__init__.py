"""fairseq audio data files (manifests, labels) read and checked, with no fairseq and no plugin.

Both the plugin's tasks and the data_prep tools read manifests here; importing this package
registers nothing and patches nothing (``sslasr_plugin.patches`` does that, for the plugin).
"""
