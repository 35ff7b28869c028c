"""Offline data preparation for sslasr_plugin: one library function per step, thin CLIs over them."""
