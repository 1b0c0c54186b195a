"""In the style of d2l's old TensorFlow RNN model (Keras 2): begin_state asks the cell for a
zero state with a dtype, and an older variant passes the inputs."""

import tensorflow as tf


class RNNModel(tf.keras.layers.Layer):
    def __init__(self, rnn_layer, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.dense = tf.keras.layers.Dense(vocab_size)

    def call(self, inputs, state):
        X = tf.one_hot(tf.transpose(inputs), self.vocab_size)
        Y, *state = self.rnn(X, state)
        output = self.dense(tf.reshape(Y, (-1, Y.shape[-1])))
        return output, state

    def begin_state(self, *args, **kwargs):
        return self.rnn.cell.get_initial_state(*args, **kwargs)

    def begin_state_for(self, batch_size):
        return self.rnn.cell.get_initial_state(batch_size=batch_size, dtype=tf.float32)  # expect: get_initial_state_dtype


lstm_cell = tf.keras.layers.LSTMCell(32, kernel_initializer="glorot_uniform")
lstm_layer = tf.keras.layers.RNN(lstm_cell, time_major=True, return_sequences=True, return_state=True)  # expect: time_major
net = RNNModel(lstm_layer, vocab_size=28)
state = net.begin_state(batch_size=2, dtype=tf.float32)
x = tf.zeros((2, 28))
zero = lstm_cell.get_initial_state(inputs=x)  # expect: cell_get_initial_state_inputs
