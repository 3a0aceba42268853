"""The tutorial's TensorFlow example, run with rnnkit — names changed only.

The tutorial builds

    model = tf.keras.Sequential([
        tf.keras.layers.LSTM(128, return_sequences=True),
        tf.keras.layers.LSTM(64),
        tf.keras.layers.Dense(10, activation='softmax'),
    ])
    model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
    model.fit(x_train, y_train, epochs=10)

Here it is trained on real data shipped with rnnkit: Japanese Vowels (UCI, CC BY 4.0), nine
speakers saying /ae/, 12 LPC coefficients per frame, 7–29 frames per utterance. The only
changes: ``tf.keras`` -> ``rnnkit`` and ``Dense(9)`` because there are nine speakers.
The sequences are standardised with statistics of the training set and zero-padded at the
front to 29 frames (``pad_sequences``' default), as a TensorFlow user would do.

Run:  python examples/tutorial_japanese_vowels.py
"""


import rnnkit
from rnnkit.data import StandardScaler, load_japanese_vowels, pad_sequences

rnnkit.utils.set_random_seed(0)

x_train, y_train, x_test, y_test = load_japanese_vowels()
scaler = StandardScaler().fit(x_train)                      # training statistics only
x_train = pad_sequences(scaler.transform(x_train), dtype="float32")   # (270, 26, 12)
x_test = pad_sequences(scaler.transform(x_test), maxlen=x_train.shape[1], dtype="float32")
y_train = rnnkit.utils.to_categorical(y_train, 9)           # (270, 9) one-hot
y_test = rnnkit.utils.to_categorical(y_test, 9)

model = rnnkit.Sequential([
    rnnkit.layers.LSTM(128, return_sequences=True),
    rnnkit.layers.LSTM(64),
    rnnkit.layers.Dense(9, activation="softmax"),
])
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=10)

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
