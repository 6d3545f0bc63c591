"""Training and merging through Axolotl: the launch argv, one run folder per config, the trainer's log, the
merge and its numeric check, and the tiny test model.

May import: core, config, data, plan."""
