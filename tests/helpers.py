"""Helpers shared by test modules (import them from here, never from another test module)."""
import numpy as np
import pytest


def assert_close(a, b, what, tol=1e-5):
    """Equal to `tol`, relative, and absolute on the scale of `b` (at least 1)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=what)


def loss_and_grads(model, x):
    """d(sum(outputs**2) + sum(states))/d(weights), on whichever backend Keras runs."""
    import keras
    from keras import ops

    backend = keras.backend.backend()

    def loss_of(outputs):
        return ops.sum(outputs[0] ** 2) + sum(ops.sum(s) for s in outputs[1:])

    if backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = loss_of(model(x))
        return [np.asarray(g) for g in tape.gradient(loss, model.trainable_weights)]
    if backend == "jax":
        import jax
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def f(values):
            outputs, _ = model.stateless_call(values, frozen, x)
            return loss_of(outputs)
        return [np.asarray(g) for g in jax.grad(f)(trainable)]
    if backend == "torch":
        loss = loss_of(model(x))
        loss.backward()
        return [v.value.grad.detach().cpu().numpy() for v in model.trainable_weights]
    pytest.skip(f"no gradient helper for backend {backend}")
