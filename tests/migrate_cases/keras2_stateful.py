"""Keras 2 code touching LSTM state in the other ways the checker knows (tf.keras, Keras 2 era)."""

import numpy as np
import tensorflow as tf
from tensorflow.keras import backend as K
from tensorflow.keras.layers import CuDNNLSTM  # expect: cudnn_lstm

B, T, F, U = 2, 5, 3, 4

model = tf.keras.Sequential([tf.keras.layers.LSTM(U, stateful=True, batch_input_shape=(B, T, F))])  # expect: batch_input_shape
x = np.zeros((4, T, F), "float32")
y = model.predict(x)  # expect: predict_default_batch_size
y = model.predict(x, batch_size=B)
lstm = model.layers[0]
h = K.get_value(lstm.states[0])  # expect: backend_get_value
K.set_value(lstm.states[1], np.zeros((B, U)))  # expect: backend_set_value
model.save("stateful.h5")  # expect: save_h5_state
model.save_weights("stateful_weights.h5")  # expect: save_weights_h5
model.load_weights("stateful_weights.h5")
again = tf.keras.models.load_model("stateful.h5")  # expect: load_keras2_h5

fast = CuDNNLSTM(U, return_sequences=True)  # expect: cudnn_lstm
faster = tf.compat.v1.keras.layers.CuDNNGRU(U)  # expect: cudnn_lstm

free = tf.keras.Input((None, F))
unrolled = tf.keras.layers.LSTM(U, unroll=True)(free)  # expect: unroll_free_time_axis


class ResetEachEpoch(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.reset_states()  # expect: model_reset_states
