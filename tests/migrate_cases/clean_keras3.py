"""Keras 3 code with look-alikes of the Keras 2 idioms: the checker must find nothing here."""

import keras
import numpy as np
from keras import ops

B, T, F, U = 2, 5, 3, 4


class Tracker:
    """Not a layer: its own reset_states, states and get_initial_state."""

    def __init__(self):
        self.states = [0, 0]

    def reset_states(self, states=None):
        self.states = list(states or [0, 0])

    def get_initial_state(self, x, dtype=None):
        return [x, x]

    def save(self, name):
        return name


tracker = Tracker()
tracker.reset_states()
tracker.reset_states(states=[1, 2])
tracker.states[0] = 5
tracker.get_initial_state(3, dtype="int")
tracker.save("notes")

model = keras.Sequential([keras.Input(batch_shape=(B, T, F)), keras.layers.LSTM(U, stateful=True)])
x = np.zeros((4, T, F), "float32")
y = model.predict(x, batch_size=B)
y = model.predict(x, B)
lstm = model.layers[0]
lstm.reset_states()
for layer in model.layers:
    layer.reset_states()
lstm.states[0].assign(np.zeros((B, U), "float32"))
h = ops.convert_to_numpy(lstm.states[0])
cell = keras.layers.LSTMCell(U)
zeros = cell.get_initial_state(batch_size=B)
more = lstm.get_initial_state(batch_size=ops.shape(x)[0])
model.save("m.keras")
model.save_weights("m.weights.h5")
keras.Input(shape=(T, F), batch_size=B)
outputs = list(keras.layers.LSTM(U, return_state=True)(x))
states = outputs[1:] + [None]
fixed = keras.layers.LSTM(U, unroll=True)(keras.Input((T, F)))
np.save("array", np.zeros(3))
