"""pytest start-up for the whole repository: TensorFlow is imported once, quietly.

Doctests in ``lstm_utils/``, unit tests in ``tests/`` and the notebook tests share it.
"""

import lstm_utils

lstm_utils.quiet_tensorflow()
