# The code blocks of the source answer ("Initializing LSTM hidden state Tensorflow/Keras"),
# Keras 2 era, in the order the answer shows them. Doctest prompts are dropped, outputs omitted.
# Each line with a Keras 2 idiom says which one: the migration checker's tests read `# expect:`.

# Stateless LSTM
import tensorflow as tf
import numpy as np
inputs = np.random.random([1, 10, 1]).astype(np.float32)
lstm = tf.keras.layers.LSTM(8)
c_0 = tf.convert_to_tensor(np.random.random([1, 8]).astype(np.float32))
h_0 = tf.convert_to_tensor(np.random.random([1, 8]).astype(np.float32))
outputs = lstm(inputs, initial_state=[h_0, c_0])

# Stateful LSTM
import tensorflow as tf
import numpy as np
from pprint import pprint
inputs = np.random.random([1, 10, 1]).astype(np.float32)
lstm = tf.keras.layers.LSTM(8, stateful=True, batch_size=(1, 10, 1))  # expect: layer_batch_size
c_0 = tf.convert_to_tensor(np.random.random([1, 8]).astype(np.float32))
h_0 = tf.convert_to_tensor(np.random.random([1, 8]).astype(np.float32))
outputs = lstm(inputs, initial_state=[h_0, c_0])
pprint(outputs)
pprint(lstm.states)
lstm.reset_states()
pprint(lstm.states)
lstm.reset_states(states=[h_0, c_0])  # expect: reset_states_with_states
pprint(lstm.states)
pprint(h_0)
pprint(c_0)

# The second answer: a stateful model, then its states replaced
from keras.layers import LSTM, Input
from keras.models import Model
input = Input(batch_shape=(32, 10, 1))
lstm_layer = LSTM(10, stateful=True)(input)
model = Model(input, lstm_layer)
model.compile(optimizer="adam", loss="mse")

import numpy
import keras.backend as K
hidden_states = K.variable(value=numpy.random.normal(size=(32, 10)))  # expect: backend_variable
cell_states = K.variable(value=numpy.random.normal(size=(32, 10)))  # expect: backend_variable
model.layers[1].states[0] = hidden_states  # expect: state_list_replacement
model.layers[1].states[1] = cell_states  # expect: state_list_replacement
