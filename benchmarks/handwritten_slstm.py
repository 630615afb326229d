"""The seed article's hand-written S-LSTM cell, ported to Keras 3 the way a user would port it.

The article (`slstm.py`, TensorFlow 2.1) subclasses `tf.keras.layers.AbstractRNNCell` and writes
`call` after `LSTMCell`'s `implementation=1`: every step it splits `kernel` and `bias` in two and
does four products, `x @ k_f`, `x @ k_c`, `h @ R[:, :u]`, `h @ R[:, u:]`:

    f = recurrent_activation(x k_f + b_f + h R[:, :u])
    c = f * c + (1 - f) * activation(x k_c + b_c + h R[:, u:])
    h = activation(c)

Keras 3 has no `AbstractRNNCell`, `K.dot`, `K.bias_add` or `array_ops.split`, so the port is a
`keras.layers.Layer` with `state_size = [units, units]` and `keras.ops` (`ops.split`, `ops.matmul`,
`+` for the bias, slicing of the variable). The per-step structure is kept exactly: the splits,
the four products and the two bias adds happen inside `call`, at every time step. That is the
point of the benchmark; nothing is fused or hoisted out of the loop.

The weights are made in the article's order, with the article's shapes and names, so they are
interchangeable with the generated `SLSTMCell` (`cell.set_weights(generated.get_weights())`):

    kernel (input_dim, 2 * units) = [k_f | k_c]
    recurrent_kernel (units, 2 * units) = [R_f | R_c]
    bias (2 * units,) = [b_f | b_c]

Defaults are the article's: activation tanh, recurrent activation hard_sigmoid (Keras 3's
hard_sigmoid is clip(x / 6 + 1/2, 0, 1); TF 2.1's was clip(0.2 x + 1/2, 0, 1)).

    import keras
    from handwritten_slstm import SLSTMCell
    layer = keras.layers.RNN(SLSTMCell(64))
"""
import keras
from keras import ops


class SLSTMCell(keras.layers.Layer):
    """The article's `SLSTMCell(AbstractRNNCell)`, ported to Keras 3 (no dropout, as in the article)."""

    def __init__(self,
                 units,
                 activation="tanh",
                 recurrent_activation="hard_sigmoid",
                 use_bias=True,
                 kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal",
                 bias_initializer="zeros",
                 kernel_regularizer=None,
                 recurrent_regularizer=None,
                 bias_regularizer=None,
                 kernel_constraint=None,
                 recurrent_constraint=None,
                 bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = use_bias

        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    @property
    def state_size(self):
        return [self.units, self.units]

    @property
    def output_size(self):
        return self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, self.units * 2),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units * 2),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint)

        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units * 2,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs, states, training=None):
        h_tm1 = states[0]  # previous memory state
        c_tm1 = states[1]  # previous carry state

        k_f, k_c = ops.split(self.kernel, 2, axis=1)
        x_f = ops.matmul(inputs, k_f)
        x_c = ops.matmul(inputs, k_c)
        if self.use_bias:
            b_f, b_c = ops.split(self.bias, 2, axis=0)
            x_f = x_f + b_f
            x_c = x_c + b_c

        f = self.recurrent_activation(x_f + ops.matmul(
            h_tm1, self.recurrent_kernel[:, :self.units]))
        c = f * c_tm1 + (1 - f) * self.activation(x_c + ops.matmul(
            h_tm1, self.recurrent_kernel[:, self.units:]))

        h = self.activation(c)
        return h, [h, c]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }
        return {**super().get_config(), **config}
