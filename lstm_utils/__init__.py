"""lstm_utils: read, set and manage LSTM/GRU state in Keras 3 and Keras 2.

The helper package of the LSTM State Book. Functions work on layers and models of
either Keras version (``keras`` / ``tf.keras`` for Keras 3, ``tf_keras`` for Keras 2).
Classes that must subclass a Keras base class come in two twins: the Keras 3 class
here (``lstm_utils.ResetStatesCallback``) and the Keras 2 one in ``lstm_utils.keras2``.

Importing this package does not import TensorFlow or Keras: the functions import them
when called, and the two Keras classes are made on first use.

By concern (each module's docstring names the chapter that explains it):

- state access (chapter 4): :func:`get_states`, :func:`set_states`, :func:`reset_states`,
  :func:`state_variables`, :func:`state_names`, :func:`stateful_layers`
- initial state (chapter 2): :func:`check_initial_state`, :func:`expected_initial_state`
- NumPy reference (chapter 1): :func:`reference_forward`, :func:`lstm_step`,
  :func:`gru_step`, :func:`simple_rnn_step`; ``h`` and ``c`` at every step: :func:`state_sequence`
- stateful training (chapters 3 and 5): :func:`to_stateful_batches`,
  :func:`from_stateful_batches`, :func:`stateful_batch_size`, :func:`check_batch`,
  :func:`with_batch_size`, ``ResetStatesCallback``
- replaced state lists (chapter 6): :func:`find_replaced_states`, :func:`explain_replaced_states`
- learned initial state (chapter 8): ``TrainableInitialState``
- saving state (chapter 9): :func:`save_states`, :func:`load_states`
- masking (chapter 10): :func:`padding_mask`, :func:`cudnn_blockers`
- streaming and export (chapter 11): :class:`Streamer`, :func:`step_model`
- backends and migration (chapter 12): :func:`run_on_backend`, :func:`backend_behaviour`,
  :func:`installed_backends`, ``StatefulLSTM`` and ``StatefulGRU`` (Keras 3, state carried on
  JAX too), :func:`load_keras2_h5`, :func:`torch_rnn_from_keras`, :func:`torch_forward`; the
  registry of Keras 2 idioms is the submodule :mod:`lstm_utils.migration`, and the checker of
  users' code ``python -m lstm_utils.migrate`` (:mod:`lstm_utils.migrate`)
- many devices (chapter 13): :func:`logical_cpus`, :func:`replicas_in_sync`,
  :func:`replica_variables`, :func:`distribute_rows`, :func:`gather_rows`,
  :func:`predict_carrying_state`, :func:`fit_carrying_state`
- chapters' own tools: :func:`check_parameters`, :func:`set_seed`, :func:`quiet_tensorflow`,
  :func:`expect_error`, :func:`show_array`, :class:`VersionTable`, :func:`all_close`,
  :func:`which_matches`

Examples
--------
>>> import lstm_utils
>>> lstm_utils.check_parameters(SEED=0, UNITS=(8, 1, 64))
{'SEED': 0, 'UNITS': 8}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lstm_utils import migration as migration  # a namespace: lstm_utils.migration.run_all()
from lstm_utils._keras_classes import module_hooks
from lstm_utils.backends import (
    BACKENDS,
    BEHAVIOUR_ROWS,
    BackendRunError,
    backend_behaviour,
    installed_backends,
    run_on_backend,
)
from lstm_utils.compare import DEFAULT_ATOL, all_close, max_difference, which_matches
from lstm_utils.diagnostics import explain_replaced_states, find_replaced_states
from lstm_utils.display import ExpectedError, VersionTable, expect_error, show_array
from lstm_utils.distribute import (
    MAX_LOGICAL_CPUS,
    distribute_rows,
    fit_carrying_state,
    gather_rows,
    logical_cpus,
    predict_carrying_state,
    replica_variables,
    replicas_in_sync,
)
from lstm_utils.initial_state import check_initial_state, expected_initial_state
from lstm_utils.legacy import load_keras2_h5
from lstm_utils.masking import cudnn_blockers, padding_mask
from lstm_utils.persistence import load_states, save_states
from lstm_utils.reference import gru_step, lstm_step, reference_forward, simple_rnn_step
from lstm_utils.repro import MAX_SEED, check_int_parameter, check_parameters, quiet_tensorflow, set_seed
from lstm_utils.sequences import state_sequence
from lstm_utils.stateful import (
    check_batch,
    from_stateful_batches,
    stateful_batch_size,
    to_stateful_batches,
    with_batch_size,
)
from lstm_utils.states import get_states, reset_states, set_states, state_names, state_variables, stateful_layers
from lstm_utils.streaming import Streamer, step_model
from lstm_utils.torch_reference import torch_forward, torch_rnn_from_keras

__version__ = "0.4.0"

__all__ = [
    "BACKENDS",
    "BEHAVIOUR_ROWS",
    "BackendRunError",
    "DEFAULT_ATOL",
    "ExpectedError",
    "MAX_LOGICAL_CPUS",
    "MAX_SEED",
    "ResetStatesCallback",
    "StatefulGRU",
    "StatefulLSTM",
    "Streamer",
    "TrainableInitialState",
    "VersionTable",
    "all_close",
    "backend_behaviour",
    "check_batch",
    "check_initial_state",
    "check_int_parameter",
    "check_parameters",
    "cudnn_blockers",
    "distribute_rows",
    "expect_error",
    "expected_initial_state",
    "explain_replaced_states",
    "find_replaced_states",
    "fit_carrying_state",
    "from_stateful_batches",
    "gather_rows",
    "get_states",
    "gru_step",
    "installed_backends",
    "load_keras2_h5",
    "load_states",
    "logical_cpus",
    "lstm_step",
    "max_difference",
    "padding_mask",
    "predict_carrying_state",
    "quiet_tensorflow",
    "reference_forward",
    "replica_variables",
    "replicas_in_sync",
    "reset_states",
    "run_on_backend",
    "save_states",
    "set_seed",
    "set_states",
    "show_array",
    "simple_rnn_step",
    "state_names",
    "state_sequence",
    "state_variables",
    "stateful_batch_size",
    "stateful_layers",
    "step_model",
    "to_stateful_batches",
    "torch_forward",
    "torch_rnn_from_keras",
    "which_matches",
    "with_batch_size",
]

if TYPE_CHECKING:
    # Made on first use (below); for the type checker they are Keras classes of unknown detail.
    ResetStatesCallback: Any
    TrainableInitialState: Any
    StatefulLSTM: Any
    StatefulGRU: Any
else:  # only the Keras subclasses load lazily; every other public name is a plain import
    __getattr__, __dir__ = module_hooks(globals(), "keras")
