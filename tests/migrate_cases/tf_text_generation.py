"""In the style of the TensorFlow text-generation tutorial (Keras 2 era): a subclassed model
that asks its GRU for a zero state from the input tensor, and a one-step generator that resets it."""

import tensorflow as tf

vocab_size, embedding_dim, rnn_units = 65, 16, 32


class MyModel(tf.keras.Model):
    def __init__(self, vocab_size, embedding_dim, rnn_units):
        super().__init__()  # the tutorial passes self too, which Keras 3 refuses (not a state idiom)
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = tf.keras.layers.GRU(rnn_units, return_sequences=True, return_state=True)
        self.dense = tf.keras.layers.Dense(vocab_size)

    def call(self, inputs, states=None, return_state=False, training=False):
        x = inputs
        x = self.embedding(x, training=training)
        if states is None:
            states = self.gru.get_initial_state(x)  # expect: layer_get_initial_state_tensor
        x, states = self.gru(x, initial_state=states, training=training)
        x = self.dense(x, training=training)
        if return_state:
            return x, states
        return x


model = MyModel(vocab_size=vocab_size, embedding_dim=embedding_dim, rnn_units=rnn_units)
example = tf.zeros((2, 7), tf.int32)
logits = model(example)
model.reset_states()  # expect: model_reset_states
logits, states = model(example, return_state=True)
print(logits.shape)
