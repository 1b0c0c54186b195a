"""In the style of the Keras 2 seq2seq example (lstm_seq2seq.py): an encoder's states start the
decoder, the model is saved as a SavedModel directory, and re-loaded for inference."""

import numpy as np
from tensorflow import keras

num_encoder_tokens, num_decoder_tokens, latent_dim = 5, 6, 8

encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
encoder = keras.layers.LSTM(latent_dim, return_state=True)
encoder_outputs, state_h, state_c = encoder(encoder_inputs)
encoder_states = [state_h, state_c]

decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
decoder_outputs = decoder_dense(decoder_outputs)

model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
model.save("s2s")  # expect: save_savedmodel_dir

model = keras.models.load_model("s2s")
encoder_model = keras.Model(encoder_inputs, encoder_states)
states_value = encoder_model.predict(np.zeros((1, 3, num_encoder_tokens)))
step = decoder_lstm(decoder_inputs, initial_state=encoder_states)
step_states = step[1:] + [decoder_inputs]  # expect: return_state_tuple
