"""The training library behind `train.py`; nothing here ships with a model.

    run_config.py    the command line -> one typed RunConfig: parse(), resolve() over the three below
    run_options.py   the options, parse-time checks, RunConfig and the defaults tables
    run_rules.py     the defaults policy and the rules between options
    leakage.py       the guard against a starting model trained on the evaluated data
    runner.py        the task-agnostic protocol steps: folds -> train -> predict -> pool -> final model -> card
    tasks.py         the Task seam and the TASKS registry (train.py --task)
    recognition.py   RecognitionTask: one label per clip (data, loss, predictions, UF1/UAR, reports, card)
    protocols.py     the PROTOCOLS registry: folds, command-line rules, descriptions
    selection.py     fixed / validation / held-out epoch choice
    loop.py          an epoch of any task's loss; recognition's batches, flips, prediction
    checkpoints.py   resuming: run settings, atomic checkpoints, leftovers of killed writes
    run_outputs.py   fold files, staged reports, the final model, the skip list
    atomic_files.py  the visible writes, and the fault-injection hook tests install
    hub_sync.py      uploads to the Hub while a run trains; hub_transfer.py: --push_only, --resume_from_hub
    preprocessing.py, clips.py, features.py, run_setup.py, tracking.py   stored flow, batches, the feature
                     store, model/optimizer construction, experiment tracking
"""
