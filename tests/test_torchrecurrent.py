"""torchrecurrent's cells (PyPI `torchrecurrent` 0.2.5, F. Martinuzzi), written as a user would:
the LaTeX of each cell's own docstring (its `.. math::` block, pasted verbatim, never edited) in an
eqcell spec that adds only what the spec language needs (`name`, `constants` for the fixed numbers
of the constructor, `sizes: {alpha: 1}` for a learned scalar, `output` where the returned value is
not the last equation's variable).

Each cell that generates is compared with torchrecurrent's own cell: the same random weights
(torchrecurrent's fused `weight_ih`/`weight_hh`/... split into the spec's parameters, set with
`cell.set_symbol_weights` in the paper's orientation), the same random input, T=5 steps, from zero
and from random initial states; outputs and every final state equal to float32 precision. The
same specs on the torch target (its nn.Module layer, weights set the same way) equal it too.

Where the docs and torchrecurrent's code differ only by a term the constructor can switch off
(a recurrent bias the docs leave out: `recurrent_bias=False`) or an activation it takes as an
argument (FastGRNN's gate), the torchrecurrent cell is built that way; a parameter the docs have and
the code lacks (RAN's b_ih^c) is set to zero on the eqcell side.

Cells whose spec eqcell refuses today are xfail(strict=True, raises=SpecError), each with the exact
first error and the construct of the docs that causes it; they start passing, and must be
unmarked, when eqcell reads that construct (and whatever construct comes next in the same block).
Cells whose docs describe a different cell than torchrecurrent's code computes (NBR, coRNN, LEM,
MUT3, NAS, SCRN, UnICORNN, WMCLSTM; see DOCS_DIFFER) cannot be compared with it: for those only
generation is tested. tauGRU's docs index time by n with a delay d (h_{n-d}).
About 10 s here (TensorFlow backend)."""
import importlib.metadata
import textwrap
from typing import NamedTuple

import numpy as np
import pytest

torchrecurrent = pytest.importorskip("torchrecurrent")
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import eqcell  # noqa: E402
from eqcell.errors import SpecError  # noqa: E402
from helpers import assert_close  # noqa: E402

UNITS, FEATURES, BATCH, STEPS = 4, 3, 2, 5
PASTED_FROM = "0.2.5"  # the torchrecurrent version whose docstrings LATEX holds

LATEX = {
    "AntisymmetricRNNCell": r"""
\begin{array}{ll}
    \mathbf{A} = \mathbf{W}_{hh} - \mathbf{W}_{hh}^\top -
        \gamma \mathbf{I} \\
    h' = h + \varepsilon \,\tanh(\mathbf{W}_{ih} x +
        \mathbf{b}_{ih} + \mathbf{A} h + \mathbf{b}_{hh})
\end{array}""",
    "GatedAntisymmetricRNNCell": r"""
\begin{aligned}
    \mathbf{z}(t) &= \sigma\Bigl(
    (\mathbf{W}_{hh} - \mathbf{W}_{hh}^\top - \gamma\,\mathbf{I})
    \,\mathbf{h}(t-1) + \mathbf{b}_{hh}
    + \mathbf{W}_{ih}^z\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^z \Bigr), \\
        \mathbf{h}(t) &= \mathbf{h}(t-1)
    + \epsilon \,\mathbf{z}(t)\,\circ\,
    \tanh\Bigl(
        (\mathbf{W}_{hh} - \mathbf{W}_{hh}^\top - \gamma\,\mathbf{I})
        \,\mathbf{h}(t-1) + \mathbf{b}_{hh}
        + \mathbf{W}_{ih}^x\,\mathbf{x}(t)
        + \mathbf{b}_{ih}^h \Bigr)
\end{aligned}""",
    "ATRCell": r"""
\mathbf{p}(t) &= \mathbf{W}_{ih}\,\mathbf{x}(t) + \mathbf{b}_{ih}, \\
\mathbf{q}(t) &= \mathbf{W}_{hh}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}, \\
\mathbf{i}(t) &= \sigma\bigl(\mathbf{p}(t) + \mathbf{q}(t)\bigr), \\
\mathbf{f}(t) &= \sigma\bigl(\mathbf{p}(t) - \mathbf{q}(t)\bigr), \\
\mathbf{h}(t) &= \mathbf{i}(t) \,\circ\, \mathbf{p}(t)
                + \mathbf{f}(t)\,\circ\, \mathbf{h}(t-1)\,.""",
    "BRCell": r"""
\mathbf{a}(t) &= 1 + \tanh\Bigl(\mathbf{W}_{ih}^{a}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{a}
    + \mathbf{w}_{hh}^{a} \,\circ\, \mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{a}\Bigr), \\
\mathbf{c}(t) &= \sigma\Bigl(\mathbf{W}_{ih}^{c}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{c}
    + \mathbf{w}_{hh}^{c} \,\circ\, \mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{c}\Bigr), \\
\mathbf{h}(t) &= \mathbf{c}(t)\,\circ\,\mathbf{h}(t-1)
    \;+\;\bigl(1 - \mathbf{c}(t)\bigr)\,\circ\,
    \tanh\Bigl(\mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
    + \mathbf{a}(t)\,\circ\,\mathbf{h}(t-1)\Bigr).""",
    "NBRCell": r"""
\mathbf{a}(t) &= 1 + \tanh\bigl(\mathbf{W}_{ih}^{a}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{a}
    + \mathbf{W}_{hh}^{a}\,\circ\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{a}\bigr), \\[6pt]
\mathbf{c}(t) &= \sigma\bigl(\mathbf{W}_{ih}^{c}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{c}
    + \mathbf{W}_{hh}^{c}\,\circ\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{c}\bigr), \\[6pt]
\mathbf{h}(t) &= \mathbf{c}(t)\,\circ\,\mathbf{h}(t-1)
    \;+\;\bigl(1 - \mathbf{c}(t)\bigr)\,\circ\,
    \tanh\bigl(\mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
    + \mathbf{a}(t)\,\circ\,\mathbf{h}(t-1)\bigr).""",
    "CFNCell": r"""
\boldsymbol{\theta}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{\theta}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{\theta}
    + \mathbf{W}_{hh}^{\theta}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{\theta}
\bigr), \\
    \boldsymbol{\eta}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{\eta}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{\eta}
    + \mathbf{W}_{hh}^{\eta}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{\eta}
\bigr), \\
    \mathbf{h}(t) &= \boldsymbol{\theta}(t)\,\circ\,
    \tanh\bigl(\mathbf{h}(t-1)\bigr)
    \;+\;\boldsymbol{\eta}(t)\,\circ\,\tanh\bigl(
        \mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
        + \mathbf{b}_{ih}^{h}
    \bigr)\,.""",
    "DSGUCell": r"""
\begin{aligned}
\mathbf{x}_g(t) &= \mathbf{W}_{ih}^{g}\mathbf{x}(t)
    + \mathbf{b}_{ih}^{g}, \\
\mathbf{z}_g(t) &= \phi\left(
    \mathbf{W}_{hh}^{g}\left(\mathbf{x}_g(t)\circ\mathbf{h}(t-1)\right)
    + \mathbf{b}_{hh}^{g}\right), \\
\mathbf{z}_{out}(t) &= \psi\left(
    \mathbf{W}_{ho}\left(\mathbf{z}_g(t)\circ\mathbf{h}(t-1)\right)
\right), \\
\mathbf{z}_t &= \sigma_h\left(
    \mathbf{W}_{ih}^{z}\mathbf{x}(t) + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{z}
\right), \\
\mathbf{h}(t) &= \left(1 - \mathbf{z}_t\right)\circ\mathbf{h}(t-1)
    + \mathbf{z}_t\circ\mathbf{z}_{out}(t).
\end{aligned}""",
    "MCLSTMCell": r"""
\mathbf{f}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{f}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{hh}^{f}\,\mathbf{v}(t-1) + \mathbf{b}_{hh}^{f}
\bigr), \\[4pt]
\mathbf{i}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{i}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{i}
    + \mathbf{W}_{hh}^{i}\,\mathbf{v}(t-1) + \mathbf{b}_{hh}^{i}
\bigr), \\[4pt]
\mathbf{o}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{o}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{o}
    + \mathbf{W}_{hh}^{o}\,\mathbf{v}(t-1) + \mathbf{b}_{hh}^{o}
\bigr), \\[4pt]
\mathbf{m}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{m}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{m}
    + \mathbf{W}_{hh}^{m}\,\mathbf{v}(t-1) + \mathbf{b}_{hh}^{m}
\bigr), \\[4pt]
\mathbf{n}(t) &= \tanh\bigl(
    \mathbf{W}_{ih}^{n}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{n}
    + \mathbf{W}_{hh}^{n}\,\mathbf{v}(t-1) + \mathbf{b}_{hh}^{n}
\bigr), \\[4pt]
\mathbf{c}(t) &= \mathbf{f}(t)\circ\mathbf{c}(t-1)
    + \mathbf{i}(t)\circ\mathbf{n}(t), \\[4pt]
\mathbf{h}(t) &= \mathbf{o}(t)\circ\tanh\bigl(\mathbf{c}(t)\bigr), \\[4pt]
\mathbf{v}(t) &= \mathbf{m}(t)\circ\tanh\bigl(\mathbf{c}(t)\bigr),""",
    "MGUCell": r"""
\mathbf{f}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{f}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{hh}^{f}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{f}
\bigr), \\[6pt]
\tilde{\mathbf{h}}(t) &= \phi\bigl(
    \mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
    + \mathbf{W}_{hh}^{h}\bigl(\mathbf{f}(t)\circ\mathbf{h}(t-1)\bigr)
    + \mathbf{b}_{hh}^{h}
\bigr), \\[6pt]
\mathbf{h}(t) &= \bigl(1 - \mathbf{f}(t)\bigr)\circ\mathbf{h}(t-1)
    \;+\;\mathbf{f}(t)\circ\tilde{\mathbf{h}}(t),""",
    "MinimalRNNCell": r"""
\mathbf{z}(t) &= \phi\bigl(
    \mathbf{W}_{ih}\,\mathbf{x}(t) + \mathbf{b}_{ih}
\bigr), \\[6pt]
\mathbf{u}(t) &= \sigma\bigl(
    \mathbf{W}_{hh}\,\mathbf{h}(t-1)
    + \mathbf{W}_{mm}\,\mathbf{z}(t)
    + \mathbf{b}_{hh}
\bigr), \\[6pt]
\mathbf{h}(t) &= \mathbf{u}(t)\circ\mathbf{h}(t-1)
    \;+\;\bigl(1 - \mathbf{u}(t)\bigr)\circ\mathbf{z}(t),""",
    "MiRU1Cell": r"""
r(t) &= \sigma\bigl(
    W_r\,x(t) + b_r + U_r\,h(t-1)
\bigr), \\[6pt]
\tilde{h}(t) &= \tanh\bigl(
    W_h\,x(t) + b_h
    + U_h\,\bigl(r(t) \circ h(t-1)\bigr)
\bigr), \\[6pt]
h(t) &= \lambda \circ h(t-1)
       + \bigl(1 - \lambda\bigr) \circ \tilde{h}(t),""",
    "MiRU2Cell": r"""
\tilde{h}(t) &= \tanh\bigl(
    W_h\,x(t) + b_h
    + U_h\,\bigl(\theta \circ h(t-1)\bigr)
\bigr), \\[6pt]
h(t) &= \lambda \circ h(t-1)
       + \bigl(1 - \lambda\bigr) \circ \tilde{h}(t),""",
    "coRNNCell": r"""
\begin{aligned}
\mathbf{c}(t) &= \mathbf{c}(t-1)
    + \Delta t \,\tanh\Bigl(
        \mathbf{W}_{ih}\mathbf{x}(t) + \mathbf{b}_{ih}
        + \mathbf{W}_{hh}\mathbf{h}(t-1) + \mathbf{b}_{hh}
        + \mathbf{W}_{ch}\mathbf{c}(t-1) + \mathbf{b}_{ch}
    \Bigr)
    - \Delta t\,\gamma\,\mathbf{h}(t-1)
    - \Delta t\,\epsilon\,\mathbf{c}(t), \\
\mathbf{h}(t) &= \mathbf{h}(t-1) + \Delta t\,\mathbf{c}(t)
\end{aligned}""",
    "FastRNNCell": r"""
\tilde{\mathbf{h}}(t) &= \phi\bigl(
    \mathbf{W}_{ih}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}
    + \mathbf{W}_{hh}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}
\bigr), \\[6pt]
\mathbf{h}(t) &= \sigma(\alpha)\,\tilde{\mathbf{h}}(t)
                + \sigma(\beta)\,\mathbf{h}(t-1),""",
    "FastGRNNCell": r"""
\begin{aligned}
    z(t) &= \sigma(W_{ih} x(t) + b_{ih}^z
        + W_{hh} h(t-1) + b_{hh}^z), \\
    \tilde{h}(t) &= \tanh(W_{ih} x(t) + b_{ih}^h
        + W_{hh} h(t-1) + b_{hh}^h), \\
    h(t) &= \bigl[\sigma(\zeta) (1 - z(t)) + \sigma(\nu)\bigr] \circ \tilde{h}(t)
        + z(t) \circ h(t-1),
\end{aligned}""",
    "IndRNNCell": r"""
\mathbf{h}(t) = \phi\bigl(\mathbf{W}_{ih}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}
    + \mathbf{w}_{hh}\,\circ\,\mathbf{h}(t-1)\bigr)""",
    "IntersectionRNNCell": r"""
\mathbf{y}^{in}(t) &= \phi\bigl(
    \mathbf{W}_{ih}^{y}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{y}
    + \mathbf{W}_{hh}^{y}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{y}
\bigr), \\[4pt]
\mathbf{h}^{in}(t) &= \tau\bigl(
    \mathbf{W}_{ih}^{h}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{h}
    + \mathbf{W}_{hh}^{h}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{h}
\bigr), \\[4pt]
\mathbf{g}^{y}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{g^y}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{g^y}
    + \mathbf{W}_{hh}^{g^y}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{g^y}
\bigr), \\[4pt]
\mathbf{g}^{h}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{g^h}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{g^h}
    + \mathbf{W}_{hh}^{g^h}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{g^h}
\bigr), \\[4pt]
\mathbf{y}(t) &= \mathbf{g}^{y}(t)\circ\mathbf{x}(t)
    + \bigl(1 - \mathbf{g}^{y}(t)\bigr)\circ\mathbf{y}^{in}(t), \\[4pt]
\mathbf{h}(t) &= \mathbf{g}^{h}(t)\circ\mathbf{h}(t-1)
    + \bigl(1 - \mathbf{g}^{h}(t)\bigr)\circ\mathbf{h}^{in}(t),""",
    "JANETCell": r"""
\begin{aligned}
  \mathbf{s}(t) &= \mathbf{W}_{ih}^{f}\,\mathbf{x}(t)
     + \mathbf{b}_{ih}^{f}
     + \mathbf{W}_{hh}^{f}\,\mathbf{h}(t-1)
     + \mathbf{b}_{hh}^{f}, \\
      \tilde{\mathbf{c}}(t) &= \tanh\Bigl(
     \mathbf{W}_{ih}^{c}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{c}
     + \mathbf{W}_{hh}^{c}\,\mathbf{h}(t-1)
     + \mathbf{b}_{hh}^{c}\Bigr), \\
      \mathbf{c}(t) &= \sigma\bigl(\mathbf{s}(t)\bigr)\circ \mathbf{c}(t-1)
     \;+\;\bigl(1 - \sigma\bigl(\mathbf{s}(t) - \beta\bigr)\bigr)
     \circ \tilde{\mathbf{c}}(t), \\
      \mathbf{h}(t) &= \mathbf{c}(t)
\end{aligned}""",
    "LEMCell": r"""
\begin{aligned}
\boldsymbol{\Delta t}(t) &= \Delta t \,\hat{\sigma}\bigl(
    \mathbf{W}_{ih}^{1}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{1}
    + \mathbf{W}_{hh}^{1}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{1}
\bigr), \\
\overline{\boldsymbol{\Delta t}}(t) &= \Delta t \,\hat{\sigma}\bigl(
    \mathbf{W}_{ih}^{2}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{2}
    + \mathbf{W}_{hh}^{2}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{2}
\bigr), \\
\mathbf{c}(t) &= \bigl(1 - \boldsymbol{\Delta t}(t)\bigr)\circ\mathbf{c}(t-1)
    + \boldsymbol{\Delta t}(t)\circ\sigma\bigl(
        \mathbf{W}_{ih}^{c}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{c}
        + \mathbf{W}_{hh}^{c}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{c}
    \bigr), \\
\mathbf{h}(t) &= \bigl(1 - \boldsymbol{\Delta t}(t)\bigr)\circ\mathbf{h}(t-1)
    + \boldsymbol{\Delta t}(t)\circ\sigma\bigl(
        \mathbf{W}_{ih}^{h}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{h}
        + \mathbf{W}_{ch}\,\mathbf{c}(t) + \mathbf{b}_{ch}
    \bigr)
\end{aligned}""",
    "LiGRUCell": r"""
\mathbf{z}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{z}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{z}
\bigr), \\[6pt]
\tilde{\mathbf{h}}(t) &= \mathrm{ReLU}\bigl(
    \mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
    + \mathbf{W}_{hh}^{h}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{h}
\bigr), \\[6pt]
\mathbf{h}(t) &= \mathbf{z}(t)\,\circ\,\mathbf{h}(t-1)
    \;+\;\bigl(1 - \mathbf{z}(t)\bigr)\,\circ\,\tilde{\mathbf{h}}(t),""",
    "LightRUCell": r"""
\begin{aligned}
\tilde{\mathbf{h}}(t) &= \tanh\bigl(
    \mathbf{W}_{ih}^{h}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{h}
\bigr), \\
    \mathbf{f}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{f}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{hh}^{f}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{f}
\bigr), \\
    \mathbf{h}(t) &= \bigl(1 - \mathbf{f}(t)\bigr)\circ \mathbf{h}(t-1)
    \;+\; \mathbf{f}(t)\circ \tilde{\mathbf{h}}(t),
\end{aligned}""",
    "MultiplicativeLSTMCell": r"""
\begin{aligned}
\mathbf{m}(t) &= \bigl(\mathbf{W}_{ih}^{m}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{m}\bigr)\,\circ\,\bigl(\mathbf{W}_{hh}^{m}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{m}\bigr), \\
    \hat{\mathbf{h}}(t) &= \mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
    + \mathbf{W}_{mh}^{h}\,\mathbf{m}(t)
    + \mathbf{b}_{mh}^{h}, \\
    \mathbf{i}(t) &= \sigma\bigl(\mathbf{W}_{ih}^{i}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{i}
    + \mathbf{W}_{mh}^{i}\,\mathbf{m}(t)
    + \mathbf{b}_{mh}^{i}\bigr), \\
    \mathbf{f}(t) &= \sigma\bigl(\mathbf{W}_{ih}^{f}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{mh}^{f}\,\mathbf{m}(t)
    + \mathbf{b}_{mh}^{f}\bigr), \\
    \mathbf{o}(t) &= \sigma\bigl(\mathbf{W}_{ih}^{o}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{o}
    + \mathbf{W}_{mh}^{o}\,\mathbf{m}(t)
    + \mathbf{b}_{mh}^{o}\bigr), \\
    \mathbf{c}(t) &= \mathbf{f}(t)\circ\mathbf{c}(t-1)
    + \mathbf{i}(t)\circ\tanh\bigl(\hat{\mathbf{h}}(t)\bigr), \\
    \mathbf{h}(t) &= \tanh\bigl(\mathbf{c}(t)\bigr)\circ\mathbf{o}(t)
\end{aligned}""",
    "MUT1Cell": r"""
\begin{aligned}
\mathbf{z}(t) &= \sigma\!\bigl(
    \mathbf{W}_{ih}^{z}\mathbf{x}(t) + \mathbf{b}_{ih}^{z}
\bigr), \\
\mathbf{r}(t) &= \sigma\!\bigl(
    \mathbf{W}_{ih}^{r}\mathbf{x}(t) + \mathbf{b}_{ih}^{r}
    + \mathbf{W}_{hh}^{r}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{r}
\bigr), \\
\hat{\mathbf{h}}(t) &= \tanh\!\Bigl(
    \mathbf{W}_{hh}^{h}\bigl(\mathbf{r}(t)\!\circ\!\mathbf{h}(t-1)\bigr)
    + \tanh\!\bigl(\mathbf{W}_{ih}^{h}\mathbf{x}(t) + \mathbf{b}_{ih}^{h}\bigr)
    + \mathbf{b}_{hh}^{h}
\Bigr), \\
\mathbf{h}(t) &= \mathbf{z}(t)\!\circ\!\hat{\mathbf{h}}(t)
    + \bigl(1 - \mathbf{z}(t)\bigr)\!\circ\!\mathbf{h}(t-1).
\end{aligned}""",
    "MUT2Cell": r"""
\begin{aligned}
\mathbf{z}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{z}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{z}
\bigr), \\
\mathbf{r}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{r}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{r}
    + \mathbf{W}_{hh}^{r}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{r}
\bigr), \\
\mathbf{h}(t) &= \tanh\Bigl(
    \mathbf{W}_{hh}^{h}\,\bigl(\mathbf{r}(t)\circ\mathbf{h}(t-1)\bigr)
    + \mathbf{b}_{hh}^{h}
    + \mathbf{W}_{ih}^{h}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{h}
\Bigr)\circ\mathbf{z}(t)
+ \mathbf{h}(t-1)\circ\bigl(1 - \mathbf{z}(t)\bigr)
\end{aligned}""",
    "MUT3Cell": r"""
\begin{aligned}
\mathbf{z}(t) &= \sigma\Bigl(
    \mathbf{W}_{ih}^{z}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{z}
\Bigr), \\
\mathbf{r}(t) &= \sigma\Bigl(
    \mathbf{x}(t) + \mathbf{W}_{hh}^{r}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{r}
\Bigr), \\
\mathbf{h}(t) &= \Bigl[\tanh\bigl(
    \mathbf{W}_{hh}^{h}\,(\mathbf{r}(t)\circ\mathbf{h}(t-1))
    + \mathbf{b}_{hh}^{h}
    + \mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
\bigr)\Bigr]\circ\mathbf{z}(t)
+ \mathbf{h}(t-1)\circ\bigl(1 - \mathbf{z}(t)\bigr)
\end{aligned}""",
    "NASCell": r"""
\mathbf{g}(t)
    &= \mathbf{W}_{ih}\,\mathbf{x}(t) + \mathbf{b}_{ih}
    + \mathbf{W}_{hh}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}, \\[6pt]
[g_0,\dots,g_7] &= \mathrm{chunk}_8\bigl(\mathbf{g}(t)\bigr), \\[6pt]
o_k(t) &=
    \begin{cases}
        \sigma(g_k), & k\in\{0,2,5,7\},\\
        \mathrm{ReLU}(g_k), & k\in\{1,3\},\\
        \tanh(g_k), & k\in\{4,6\},
    \end{cases} \\[6pt]
\ell_1(t) &= \tanh\bigl(o_0\,\circ\,o_1\bigr),\quad
\ell_2(t) = \tanh\bigl(o_2 + o_3\bigr), \\[3pt]
\ell_3(t) &= \tanh\bigl(o_4\,\circ\,o_5\bigr),\quad
\ell_4(t) = \sigma\bigl(o_6 + o_7\bigr), \\[6pt]
\tilde{c}(t) &= \tanh\bigl(\ell_1 + c(t-1)\bigr),\quad
c(t) = \ell_1\,\circ\,\ell_2, \\[3pt]
\ell_5(t) &= \tanh\bigl(\ell_3 + \ell_4\bigr),\quad
h(t) = \tanh\bigl(c(t)\,\circ\,\ell_5(t)\bigr).""",
    "OriginalLSTMCell": r"""
\begin{aligned}
\mathbf{g}(t) &= \mathbf{W}_{ih}\,\mathbf{x}(t) + \mathbf{b}_{ih}
    + \mathbf{W}_{hh}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}, \\
    \mathbf{i}(t) &= \sigma\bigl(g_i(t)\bigr), \\
    \tilde{\mathbf{c}}(t) &= \tanh\bigl(g_c(t)\bigr), \\
    \mathbf{o}(t) &= \sigma\bigl(g_o(t)\bigr), \\
    \mathbf{c}(t) &= \mathbf{c}(t-1)
    + \mathbf{i}(t)\,\odot\,\tilde{\mathbf{c}}(t), \\
    \mathbf{h}(t) &= \mathbf{o}(t)\,\odot\,\tanh\bigl(\mathbf{c}(t)\bigr),
\end{aligned}""",
    "PeepholeLSTMCell": r"""
\mathbf{z}(t) &= \tanh\Bigl(
    \mathbf{W}_{ih}^{z}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{z}
\Bigr), \\[6pt]
\mathbf{i}(t) &= \sigma\Bigl(
    \mathbf{W}_{ih}^{i}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{i}
    + \mathbf{W}_{hh}^{i}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{i}
    + \mathbf{p}^{i}\circ\mathbf{c}(t-1)
\Bigr), \\[6pt]
\mathbf{f}(t) &= \sigma\Bigl(
    \mathbf{W}_{ih}^{f}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{hh}^{f}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{f}
    + \mathbf{p}^{f}\circ\mathbf{c}(t-1)
\Bigr), \\[6pt]
\mathbf{c}(t) &= \mathbf{f}(t)\,\circ\,\mathbf{c}(t-1)
    + \mathbf{i}(t)\,\circ\,\mathbf{z}(t), \\[6pt]
\mathbf{o}(t) &= \sigma\Bigl(
    \mathbf{W}_{ih}^{o}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{o}
    + \mathbf{W}_{hh}^{o}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{o}
    + \mathbf{p}^{o}\circ\mathbf{c}(t)
\Bigr), \\[6pt]
\mathbf{h}(t) &= \mathbf{o}(t)\,\circ\,\tanh\bigl(\mathbf{c}(t)\bigr)""",
    "RANCell": r"""
\begin{aligned}
    \tilde{\mathbf{c}}(t) &= \mathbf{W}_{ih}^{c}\,\mathbf{x}(t)
        + \mathbf{b}_{ih}^{c}, \\
    \mathbf{i}(t) &= \sigma\bigl(
        \mathbf{W}_{ih}^{i}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{i}
        + \mathbf{W}_{hh}^{i}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{i}
    \bigr), \\
    \mathbf{f}(t) &= \sigma\bigl(
        \mathbf{W}_{ih}^{f}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
        + \mathbf{W}_{hh}^{f}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{f}
    \bigr), \\
    \mathbf{c}(t) &= \mathbf{i}(t)\circ\tilde{\mathbf{c}}(t)
        + \mathbf{f}(t)\circ\mathbf{c}(t-1), \\
    \mathbf{h}(t) &= \tanh\bigl(\mathbf{c}(t)\bigr)
\end{aligned}""",
    "ResLSTMCell": r"""
\begin{aligned}
\mathbf{i}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{i}\mathbf{x}(t) + \mathbf{b}_{ih}^{i}
    + \mathbf{W}_{hh}^{i}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{i}
    + \mathbf{p}^{i}\odot\mathbf{c}(t-1)\bigr), \\
\mathbf{f}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{f}\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{hh}^{f}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{f}
    + \mathbf{p}^{f}\odot\mathbf{c}(t-1)\bigr), \\
\mathbf{g}(t) &= \phi\bigl(
    \mathbf{W}_{ih}^{g}\mathbf{x}(t) + \mathbf{b}_{ih}^{g}
    + \mathbf{W}_{hh}^{g}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{g}\bigr), \\
\mathbf{c}(t) &= \mathbf{f}(t)\odot\mathbf{c}(t-1)
    + \mathbf{i}(t)\odot\mathbf{g}(t), \\
\mathbf{o}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{o}\mathbf{x}(t) + \mathbf{b}_{ih}^{o}
    + \mathbf{W}_{hh}^{o}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{o}
    + \mathbf{p}^{o}\odot\mathbf{c}(t)\bigr), \\
\mathbf{h}(t) &= \mathbf{o}(t)\odot\bigl(
    \mathbf{W}_{p}\,\phi(\mathbf{c}(t)) + \mathbf{W}_{r}\mathbf{x}(t)
    \bigr),
\end{aligned}""",
    "SCRNCell": r"""
\begin{aligned}
\mathbf{s}(t) &= (1 - \alpha)\,\bigl(\mathbf{W}_{ih}^{s}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{s}\bigr)
    + \alpha\,\mathbf{s}(t-1), \\
    \mathbf{h}(t) &= \sigma\Bigl(
    \mathbf{W}_{ch}^{h}\,\mathbf{s}(t)
    + \mathbf{b}_{ch}^{h}
    + \mathbf{W}_{ih}^{h}\,\mathbf{x}(t)
    + \mathbf{b}_{ih}^{h}
    + \mathbf{W}_{hh}^{h}\,\mathbf{h}(t-1)
    + \mathbf{b}_{hh}^{h}
\Bigr), \\
    \mathbf{y}(t) &= f\Bigl(
    \mathbf{W}_{ch}^{y}\,\mathbf{s}(t)
    + \mathbf{b}_{ch}^{y}
    + \mathbf{W}_{hh}^{y}\,\mathbf{h}(t)
    + \mathbf{b}_{hh}^{y}
\Bigr)
\end{aligned}""",
    "SGUCell": r"""
\begin{aligned}
\mathbf{x}_g(t) &= \mathbf{W}_{ih}^{g}\mathbf{x}(t)
    + \mathbf{b}_{ih}^{g}, \\
\mathbf{z}_g(t) &= \phi\left(
    \mathbf{W}_{hh}^{g}\left(\mathbf{x}_g(t)\circ\mathbf{h}(t-1)\right)
    + \mathbf{b}_{hh}^{g}\right), \\
\mathbf{z}_{out}(t) &= \psi\left(\mathbf{z}_g(t)\circ\mathbf{h}(t-1)\right), \\
\mathbf{z}_t &= \sigma_h\left(
    \mathbf{W}_{ih}^{z}\mathbf{x}(t) + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\mathbf{h}(t-1) + \mathbf{b}_{hh}^{z}
\right), \\
\mathbf{h}(t) &= \left(1 - \mathbf{z}_t\right)\circ\mathbf{h}(t-1)
    + \mathbf{z}_t\circ\mathbf{z}_{out}(t).
\end{aligned}""",
    "SGRNCell": r"""
\begin{aligned}
    \mathbf{f}(t) &= \sigma\Bigl(
        \mathbf{W}_{ih}\,\mathbf{x}(t) + \mathbf{b}_{ih}
        + \mathbf{W}_{hh}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}
    \Bigr), \\
    \mathbf{i}(t) &= 1 - \mathbf{f}(t), \\
    \mathbf{h}(t) &= \tanh\Bigl(
        \mathbf{i}(t)\,\circ\,
        \bigl(\mathbf{W}_{ih}\,\mathbf{x}(t) + \mathbf{b}_{ih}\bigr)
        + \mathbf{f}(t)\,\circ\,\mathbf{h}(t-1)
    \Bigr)
\end{aligned}""",
    "STARCell": r"""
\begin{aligned}
    \mathbf{z}(t) &= \tanh\bigl(\mathbf{W}_{ih}^{z}\,\mathbf{x}(t) +
        \mathbf{b}_{ih}^{z}\bigr), \\
        \mathbf{k}(t) &= \sigma\bigl(\mathbf{W}_{ih}^{k}\,\mathbf{x}(t) +
        \mathbf{b}_{ih}^{k} +
        \mathbf{W}_{hh}^{k}\,\mathbf{h}(t-1) +
        \mathbf{b}_{hh}^{k}\bigr), \\
        \mathbf{h}(t) &= \tanh\bigl((1 - \mathbf{k}(t)) \circ \mathbf{h}(t-1) +
        \mathbf{k}(t) \circ \mathbf{z}(t)\bigr),
\end{aligned}""",
    "tauGRUCell": r"""
\begin{aligned}
\mathbf{u}_n &= \phi(W_1 \mathbf{h}_n + U_1 \mathbf{x}_n), \\
\mathbf{z}_n &= \phi(W_2 \mathbf{h}_{n-d} + U_2 \mathbf{x}_n), \\
\mathbf{g}_n &= \sigma(W_3 \mathbf{h}_n + U_3 \mathbf{x}_n), \\
\mathbf{a}_n &= \sigma(W_4 \mathbf{h}_n + U_4 \mathbf{x}_n), \\
\mathbf{h}_{n+1} &= (1 - \mathbf{g}_n) \circ \mathbf{h}_n
    + \mathbf{g}_n \circ
      (\mathbf{u}_n + \mathbf{a}_n \circ \mathbf{z}_n).
\end{aligned}""",
    "TRNNCell": r"""
\mathbf{z}(t) &= \mathbf{W}_{ih}^{z}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{z}, \\[4pt]
\mathbf{f}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{f}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
\bigr), \\[4pt]
\mathbf{h}(t) &= \mathbf{f}(t)\circ\mathbf{h}(t-1)
    + \bigl(1 - \mathbf{f}(t)\bigr)\circ\mathbf{z}(t),""",
    "TGRUCell": r"""
\mathbf{z}(t) &= \mathbf{W}_{ih}^{z}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{z}
    + \mathbf{W}_{hh}^{z}\,\mathbf{x}(t-1) + \mathbf{b}_{hh}^{z}, \\[4pt]
\mathbf{f}(t) &= \sigma\bigl(
    \mathbf{W}_{ih}^{f}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
    + \mathbf{W}_{hh}^{f}\,\mathbf{x}(t-1) + \mathbf{b}_{hh}^{f}
\bigr), \\[4pt]
\mathbf{o}(t) &= \tau\bigl(
    \mathbf{W}_{ih}^{o}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{o}
    + \mathbf{W}_{hh}^{o}\,\mathbf{x}(t-1) + \mathbf{b}_{hh}^{o}
\bigr), \\[4pt]
\mathbf{h}(t) &= \mathbf{f}(t)\circ\mathbf{h}(t-1)
    + \mathbf{z}(t)\circ\mathbf{o}(t),""",
    "TLSTMCell": r"""
\mathbf{z}(t) &= \mathbf{V}^{z}\,\mathbf{x}(t-1)
    + \mathbf{W}^{z}\,\mathbf{x}(t) + \mathbf{b}^{z}, \\[4pt]
\mathbf{f}(t) &= \sigma\bigl(
    \mathbf{V}^{f}\,\mathbf{x}(t-1) + \mathbf{W}^{f}\,\mathbf{x}(t) + \mathbf{b}^{f}
\bigr), \\[4pt]
\mathbf{o}(t) &= \tau\bigl(
    \mathbf{V}^{o}\,\mathbf{x}(t-1) + \mathbf{W}^{o}\,\mathbf{x}(t) + \mathbf{b}^{o}
\bigr), \\[4pt]
\mathbf{c}(t) &= \mathbf{f}(t)\circ\mathbf{c}(t-1)
    + \bigl(1 - \mathbf{f}(t)\bigr)\circ\mathbf{z}(t), \\[4pt]
\mathbf{h}(t) &= \mathbf{c}(t)\circ\mathbf{o}(t),""",
    "UGRNNCell": r"""
\begin{aligned}
    \mathbf{c}(t) &= s\left( \mathbf{W}_{hh}^c \, \mathbf{h}(t-1) +
        \mathbf{b}_{hh}^c + \mathbf{W}_{xh}^c \, \mathbf{x}(t) +
        \mathbf{b}_{ih}^c \right), \\
        \mathbf{g}(t) &= \sigma\left( \mathbf{W}_{hh}^g \, \mathbf{h}(t-1) +
        \mathbf{b}_{hh}^g + \mathbf{W}_{xh}^g \, \mathbf{x}(t) +
        \mathbf{b}_{ih}^g \right), \\
        \mathbf{h}(t) &= \mathbf{g}(t) \circ \mathbf{h}(t-1) +
        \left( 1 - \mathbf{g}(t) \right) \circ \mathbf{c}(t).
\end{aligned}""",
    "UnICORNNCell": r"""
\begin{aligned}
    \mathbf{h}(t) &= \mathbf{h}(t-1)
        + \Delta t\,\hat{\sigma}(\mathbf{w}_{ch})
        \circ \mathbf{z}(t), \\
    \mathbf{z}(t) &= \mathbf{z}(t-1)
        - \Delta t\,\hat{\sigma}(\mathbf{w}_{ch}) \circ
        \Bigl[
            \sigma\bigl(
                \mathbf{w}_{hh} \circ \mathbf{h}(t-1)
                + \mathbf{W}_{ih}\,\mathbf{x}(t)
                + \mathbf{b}_{ih}
            \bigr)
            + \alpha\,\mathbf{h}(t-1)
        \Bigr],
\end{aligned}""",
    "WMCLSTMCell": r"""
\begin{aligned}
    \mathbf{i}(t) &= \sigma\Bigl(
        \mathbf{W}_{ih}^{i}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{i}
        + \mathbf{W}_{hh}^{i}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{i}
        + \mathbf{W}_{mh}^{i}\,\mathbf{c}(t-1) + \mathbf{b}_{mh}^{i}
    \Bigr), \\
    \mathbf{f}(t) &= \sigma\Bigl(
        \mathbf{W}_{ih}^{f}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{f}
        + \mathbf{W}_{hh}^{f}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{f}
        + \mathbf{W}_{mh}^{f}\,\mathbf{c}(t-1) + \mathbf{b}_{mh}^{f}
    \Bigr), \\
    \mathbf{c}(t) &= \mathbf{f}(t)\circ\mathbf{c}(t-1)
        + \mathbf{i}(t)\circ\sigma_c\Bigl(
            \mathbf{W}_{ih}^{c}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{c}
        \Bigr), \\
    \mathbf{o}(t) &= \sigma\Bigl(
        \mathbf{W}_{ih}^{o}\,\mathbf{x}(t) + \mathbf{b}_{ih}^{o}
        + \mathbf{W}_{hh}^{o}\,\mathbf{h}(t-1) + \mathbf{b}_{hh}^{o}
        + \mathbf{W}_{mh}^{o}\,\mathbf{c}(t) + \mathbf{b}_{mh}^{o}
    \Bigr), \\
    \mathbf{h}(t) &= \mathbf{o}(t)\circ\sigma_h\bigl(\mathbf{c}(t)\bigr),
\end{aligned}""",
}


def _np(tensor):
    return tensor.detach().numpy()


class Case(NamedTuple):
    params: str             # "weight_ih=W_ih_f,W_ih_c ...": each torchrecurrent tensor and the spec's parameters
                            # it holds, in order along its first axis (equal chunks)
    states: tuple           # the spec's state names, in the order of torchrecurrent's state tuple
    extras: str = ""        # YAML the spec adds to the pasted equations
    torch_kwargs: dict = {}  # the constructor arguments that make torchrecurrent's cell the documented one
    zeros: tuple = ()       # documented parameters torchrecurrent's code does not have
    square: bool = False    # input_size == hidden_size
    gap: str = ""           # why eqcell refuses the verbatim paste today: its first error, the construct


# why eqcell refuses the docs' LaTeX today, by construct (the exact first error of `eqcell check`)
BIAS_LABEL = ("{err}: the docs label a bias (or a vector weight) with the gate it feeds, `{tex}`, and that "
              "label is also the name of a variable of the cell; eqcell reads a superscript naming a variable "
              "as a power (only a matrix's superscript is always a label, `W_{{ih}}^{{f}}` -> W_ih_f)")
PHI = ("unknown function '{f}': the docs write the configurable nonlinearity as a placeholder `\\{f}` (the prose "
       "says which: {which}); `activations:` cannot give it a meaning, its symbol must be a function eqcell knows")
# the docs name the nonlinearity by a placeholder (`\phi`, `\tau`, `s`) that their prose defines (tanh):
# the spec declares it, as a user does, with the activation it stands for
PHI_DECLARED = "activations:\n  activation: {{symbol: {f}, default: tanh}}"
SUBSCRIPTED_SIGMA = ("a name cannot start with '_': `{tex}` names an activation by a subscripted sigma ({which}); "
                     "eqcell reads \\sigma and then a stray subscript")


def bias_label(var, tex):
    return BIAS_LABEL.format(err=f"'{var}' is a variable and needs a time index", tex=tex)


CASES = {
    "ATRCell": Case("weight_ih=W_ih bias_ih=b_ih weight_hh=W_hh bias_hh=b_hh", ("h",)),
    "AntisymmetricRNNCell": Case(
        "weight_ih=W_ih bias_ih=b_ih weight_hh=W_hh bias_hh=b_hh", ("h",),
        extras="constants: {varepsilon: 0.5, gamma: 0.1}", torch_kwargs={"epsilon": 0.5, "gamma": 0.1},
        gap="unknown LaTeX command '\\begin': `\\begin{array}{ll}` (with its column argument) is not skipped as "
            "`\\begin{aligned}` is, and the hint ('put \\begin{...} and \\end{...} on lines of their own') is wrong: "
            "it is on a line of its own. Next: the docs write no time index at all (`\\mathbf{A} = ...`, "
            "`h' = h + \\varepsilon\\,\\tanh(\\mathbf{W}_{ih} x + ... + \\mathbf{A} h ...)`: 'the left side has no "
            "time index'), then the parameter-only matrix `W_hh - W_hh^\\top - \\gamma I` applied to h "
            "('`I` combined with something that is not a matrix'; even `W_hh h - W_hh^\\top h` is refused: "
            "'parameter 'W_hh' is used both as a matrix and element-wise', a weight's transpose is not read)"),
    "GatedAntisymmetricRNNCell": Case(
        "weight_ih=W_ih_z,W_ih_x bias_ih=b_ih_z,b_ih_h weight_hh=W_hh bias_hh=b_hh",
        ("h",), extras="constants: {epsilon: 0.5, gamma: 0.1}",
        torch_kwargs={"epsilon": 0.5, "gamma": 0.1}, zeros=("b_hh",),  # the docs' z(t) adds b_hh, the code does not
        gap=bias_label("z", "\\mathbf{b}_{ih}^z") + "; next, `(W_hh - W_hh^\\top - \\gamma\\,\\mathbf{I})\\,h(t-1)`: "
            "'`I` combined with something that is not a matrix' (a matrix expression of parameters; a weight's "
            "transpose `W_hh^\\top h` alone is refused too)"),
    "BRCell": Case(
        "weight_ih=W_ih_a,W_ih_c,W_ih_h bias_ih=b_ih_a,b_ih_c,b_ih_h weight_hh=w_hh_a,w_hh_c "
        "bias_hh=b_hh_a,b_hh_c",
        ("h",)),
    "CFNCell": Case(
        "weight_ih=W_ih_theta,W_ih_eta,W_ih_h bias_ih=b_ih_theta,b_ih_eta,b_ih_h weight_hh=W_hh_theta,W_hh_eta "
        "bias_hh=b_hh_theta,b_hh_eta",
        ("h",)),
    "DSGUCell": Case(
        "weight_ih=W_ih_g,W_ih_z bias_ih=b_ih_g,b_ih_z weight_hh=W_hh_g,W_hh_z bias_hh=b_hh_g,b_hh_z "
        "weight_ho=W_ho",
        ("h",),
        gap=SUBSCRIPTED_SIGMA.format(tex="\\sigma_h\\left(", which="hard sigmoid") + "; also the placeholders "
            "`\\phi` (tanh) and `\\psi` (sigmoid here), and the bias labels `\\mathbf{b}_{ih}^{z}` naming z"),
    "SGUCell": Case(
        "weight_ih=W_ih_g,W_ih_z bias_ih=b_ih_g,b_ih_z weight_hh=W_hh_g,W_hh_z bias_hh=b_hh_g,b_hh_z", ("h",),
        gap=SUBSCRIPTED_SIGMA.format(tex="\\sigma_h\\left(", which="hard sigmoid") + "; also the placeholders "
            "`\\phi` (tanh) and `\\psi` (softplus), and the bias labels `\\mathbf{b}_{ih}^{z}` naming z"),
    "MCLSTMCell": Case(
        "weight_ih=W_ih_f,W_ih_i,W_ih_o,W_ih_m,W_ih_n bias_ih=b_ih_f,b_ih_i,b_ih_o,b_ih_m,b_ih_n "
        "weight_hh=W_hh_f,W_hh_i,W_hh_o,W_hh_m,W_hh_n bias_hh=b_hh_f,b_hh_i,b_hh_o,b_hh_m,b_hh_n",
        ("v", "c"), extras="output: h"),
    "MGUCell": Case(
        "weight_ih=W_ih_f,W_ih_h bias_ih=b_ih_f,b_ih_h weight_hh=W_hh_f,W_hh_h bias_hh=b_hh_f,b_hh_h", ("h",),
        extras=PHI_DECLARED.format(f="phi")),
    "MinimalRNNCell": Case(
        "weight_ih=W_ih bias_ih=b_ih weight_hh=W_hh bias_hh=b_hh weight_mm=W_mm",
        ("h",), extras=PHI_DECLARED.format(f="phi")),
    "MiRU1Cell": Case(
        "weight_ih=W_r,W_h bias_ih=b_r,b_h weight_hh=U_r,U_h", ("h",),
        extras="constants: {lambda: 0.3}", torch_kwargs={"update_coefficient": 0.3, "recurrent_bias": False}),
    "MiRU2Cell": Case(
        "weight_ih=W_h bias_ih=b_h weight_hh=U_h", ("h",),
        extras="constants: {lambda: 0.3, theta: 0.7}",
        torch_kwargs={"update_coefficient": 0.3, "reset_coefficient": 0.7, "recurrent_bias": False}),
    "FastRNNCell": Case(
        "weight_ih=W_ih bias_ih=b_ih weight_hh=W_hh bias_hh=b_hh alpha=alpha beta=beta",
        ("h",), extras="sizes: {alpha: 1, beta: 1}\n" + PHI_DECLARED.format(f="phi")),
    "FastGRNNCell": Case(
        "weight_ih=W_ih weight_hh=W_hh bias_ih=b_ih_z,b_ih_h bias_hh=b_hh_z,b_hh_h zeta=zeta nu=nu",
        ("h",), extras="sizes: {zeta: 1, nu: 1}",
        torch_kwargs={"nonlinearity": "sigmoid"}),
    "IndRNNCell": Case(
        "weight_ih=W_ih bias_ih=b_ih vector_u=w_hh", ("h",),
        torch_kwargs={"recurrent_bias": False}, extras=PHI_DECLARED.format(f="phi")),
    "IntersectionRNNCell": Case(
        "weight_ih=W_ih_y,W_ih_h,W_ih_g_y,W_ih_g_h bias_ih=b_ih_y,b_ih_h,b_ih_g_y,b_ih_g_h "
        "weight_hh=W_hh_y,W_hh_h,W_hh_g_y,W_hh_g_h bias_hh=b_hh_y,b_hh_h,b_hh_g_y,b_hh_g_h",
        ("h",), extras="output: y", square=True,
        gap="expected an equation `v_t = expression`: the variable `\\mathbf{y}^{in}(t)` is named with a "
            "superscript (also `\\mathbf{g}^{y}(t)`); next, the nested label `\\mathbf{W}_{ih}^{g^y}` is read as a "
            "power ('a product of two column vectors'), and the placeholders `\\phi` (ReLU) and `\\tau` (tanh)"),
    "JANETCell": Case(
        "weight_ih=W_ih_f,W_ih_c bias_ih=b_ih_f,b_ih_c weight_hh=W_hh_f,W_hh_c bias_hh=b_hh_f,b_hh_c beta=beta",
        ("h", "c"), extras="sizes: {beta: 1}"),
    "LiGRUCell": Case(
        "weight_ih=W_ih_z,W_ih_h bias_ih=b_ih_z,b_ih_h weight_hh=W_hh_z,W_hh_h bias_hh=b_hh_z,b_hh_h", ("h",)),
    "LightRUCell": Case(
        "weight_ih=W_ih_h,W_ih_f bias_ih=b_ih_h,b_ih_f weight_hh=W_hh_f bias_hh=b_hh_f",
        ("h",)),
    "MultiplicativeLSTMCell": Case(
        "weight_ih=W_ih_m,W_ih_i,W_ih_f,W_ih_h,W_ih_o bias_ih=b_ih_m,b_ih_i,b_ih_f,b_ih_h,b_ih_o "
        "weight_hh=W_hh_m bias_hh=b_hh_m weight_mh=W_mh_i,W_mh_f,W_mh_h,W_mh_o "
        "bias_mh=b_mh_i,b_mh_f,b_mh_h,b_mh_o",
        ("h", "c")),
    "MUT1Cell": Case(
        "weight_ih=W_ih_z,W_ih_r,W_ih_h bias_ih=b_ih_z,b_ih_r,b_ih_h weight_hh=W_hh_r,W_hh_h "
        "bias_hh=b_hh_r,b_hh_h",
        ("h",)),
    "MUT2Cell": Case(
        "weight_ih=W_ih_z,W_ih_r,W_ih_h bias_ih=b_ih_z,b_ih_r,b_ih_h weight_hh=W_hh_z,W_hh_r,W_hh_h "
        "bias_hh=b_hh_z,b_hh_r,b_hh_h",
        ("h",)),
    "OriginalLSTMCell": Case(
        "weight_ih=W_ih bias_ih=b_ih weight_hh=W_hh bias_hh=b_hh", ("h", "c"),
        gap="variable 'g_i' is used but never defined: `\\sigma\\bigl(g_i(t)\\bigr)` reads the i-slice of the "
            "fused pre-activation `\\mathbf{g}(t)` (also g_c, g_o); the docs never say how g splits (the code: "
            "i, c, o, in that order)"),
    "PeepholeLSTMCell": Case(
        "weight_ih=W_ih_i,W_ih_f,W_ih_z,W_ih_o bias_ih=b_ih_i,b_ih_f,b_ih_z,b_ih_o "
        "weight_hh=W_hh_i,W_hh_f,W_hh_z,W_hh_o bias_hh=b_hh_i,b_hh_f,b_hh_z,b_hh_o weight_ph=p_i,p_f,p_o",
        ("h", "c")),
    "RANCell": Case(
        "weight_ih=W_ih_c,W_ih_i,W_ih_f bias_ih=b_ih_i,b_ih_f weight_hh=W_hh_i,W_hh_f bias_hh=b_hh_i,b_hh_f",
        ("h", "c"),
        zeros=("b_ih_c",)),  # the docs' content layer has a bias
    "ResLSTMCell": Case(
        "weight_ih=W_ih_i,W_ih_f,W_ih_g,W_ih_o bias_ih=b_ih_i,b_ih_f,b_ih_g,b_ih_o "
        "weight_hh=W_hh_i,W_hh_f,W_hh_g,W_hh_o bias_hh=b_hh_i,b_hh_f,b_hh_g,b_hh_o weight_ph=p_i,p_f,p_o "
        "weight_proj=W_p weight_res=W_r",
        ("h", "c"),
        gap=PHI.format(f="phi", which="tanh") + "; also the labels `\\mathbf{b}_{ih}^{i}`, `\\mathbf{p}^{i}` naming i"),
    "SGRNCell": Case("weight_ih=W_ih bias_ih=b_ih weight_hh=W_hh bias_hh=b_hh", ("h",)),
    "STARCell": Case(
        "weight_ih=W_ih_z,W_ih_k bias_ih=b_ih_z,b_ih_k weight_hh=W_hh_k bias_hh=b_hh_k",
        ("h",)),
    "TRNNCell": Case(
        "weight_ih=W_ih_z,W_ih_f bias_ih=b_ih_z,b_ih_f", ("h",)),
    "TGRUCell": Case(
        "weight_ih=W_ih_z,W_ih_f,W_ih_o bias_ih=b_ih_z,b_ih_f,b_ih_o weight_hh=W_hh_z,W_hh_f,W_hh_o "
        "bias_hh=b_hh_z,b_hh_f,b_hh_o",
        ("h", "x"), extras=PHI_DECLARED.format(f="tau")),
    "TLSTMCell": Case(
        "weight_ih=W_z,W_f,W_o bias_ih=b_z,b_f,b_o weight_hh=V_z,V_f,V_o",
        ("c", "x"), extras="output: h\n" + PHI_DECLARED.format(f="tau"),
        torch_kwargs={"recurrent_bias": False}),  # the docs have one bias per gate
    "UGRNNCell": Case(
        "weight_ih=W_xh_c,W_xh_g bias_ih=b_ih_c,b_ih_g weight_hh=W_hh_c,W_hh_g bias_hh=b_hh_c,b_hh_g", ("h",),
        extras=PHI_DECLARED.format(f="s")),  # `s\left(...\right)`: the prose never says; the code: tanh
}

# The docs describe another cell than the code computes: no comparison with torchrecurrent possible.
DOCS_DIFFER = {
    "NBRCell": ("`\\mathbf{W}_{hh}^{a}\\,\\circ\\,\\mathbf{h}(t-1)` is element-wise in the docs, a matrix product "
                "in the code", None),
    "coRNNCell": ("the docs' c(t) is implicit (`- \\Delta t\\,\\epsilon\\,\\mathbf{c}(t)`, as in the coRNN paper), "
                  "the code uses c(t-1)",
                  "c_t is defined in terms of itself: the implicit `- \\Delta t\\,\\epsilon\\,\\mathbf{c}(t)`; next, "
                  "`\\Delta t` (the step size) is read as the constant Delta times a matrix parameter named t "
                  "('matrix 't' multiplies two different operands')"),
    "LEMCell": ("the docs update h with Delta t(t) and sigma of W_ch c(t); the code with the other gate, tanh and "
                "W_ch c(t-1), and c's candidate is tanh, not sigma",
                "'\\boldsymbol{...}' must hold a name: the variable `\\boldsymbol{\\Delta t}(t)` (two tokens, and "
                "`\\overline{\\boldsymbol{\\Delta t}}(t)`); next, `\\hat{\\sigma}`, `\\Delta t` read as Delta times a "
                "matrix named t, and the numeric labels `\\mathbf{W}_{ih}^{1}` read as powers ('a product of two "
                "column vectors')"),
    "MUT3Cell": ("the docs' z(t) reads h(t-1), the code's tanh(h(t-1)); the docs' r(t) adds x(t), the code "
                 "W_ih x(t) + b", None),
    "NASCell": ("the docs compute c~(t) and never use it (c(t) = l_1 o l_2); the code's c(t) is "
                "tanh(l_1 + c(t-1)) o l_2",
                "unknown LaTeX command '\\dots': `[g_0,\\dots,g_7] &= \\mathrm{chunk}_8\\bigl(\\mathbf{g}(t)\\bigr)` "
                "(a split into eight slices), then `o_k(t) = \\begin{cases} ... k\\in\\{0,2,5,7\\} ...` (a "
                "piecewise definition over an index k)"),
    "SCRNCell": ("the code feeds its output y back as h and uses tanh for f; the docs recur on h = sigma(...)",
                 "unknown function 'f': `f\\Bigl(...\\Bigr)`, 'an optional output nonlinearity'; next, with the "
                 "learned scalar alpha (`sizes: {alpha: 1}`), `(1 - \\alpha)\\,\\bigl(...\\bigr)` and "
                 "`\\alpha\\,\\mathbf{s}(t-1)` are read as matrix products ('parameter 'alpha' is used both as a "
                 "matrix and element-wise')"),
    "UnICORNNCell": ("the docs' inner activation is sigma, the code's tanh",
                     "'\\hat' expects a letter: `\\hat{\\sigma}(\\mathbf{w}_{ch})` (the docs' name for the sigmoid "
                     "of the time-step weight); next, silently, `\\Delta t\\,\\hat{\\sigma}(...)` becomes the "
                     "constant Delta times a matrix parameter named t"),
    "WMCLSTMCell": ("the code wraps each memory term in tanh (`sigmoid(W x + W h + tanh(W_mh c + b_mh))`); the "
                    "docs add it directly",
                    SUBSCRIPTED_SIGMA.format(tex="\\sigma_c\\Bigl(", which="sigma_c and sigma_h: tanh")),
    "tauGRUCell": ("the docs index time by n with a delay d, and torchrecurrent's cell takes the delayed state as "
                   "a third argument of forward",
                   "subscript 'n-d' is not a plain name: `\\mathbf{h}_{n-d}`, a state d steps back; the docs also "
                   "define `\\mathbf{h}_{n+1}` from `\\mathbf{h}_n` (time n, not t)"),
}
EXTRAS = {"LEMCell": "constants: {Delta: 0.5}", "SCRNCell": "sizes: {alpha: 1}\noutput: y",
          "coRNNCell": "constants: {Delta: 0.1, gamma: 0.5, epsilon: 0.3}",
          "UnICORNNCell": "constants: {Delta: 0.1, alpha: 0.4}\noutput: h"}


def spec_text(name, extras=""):
    """The spec a user writes: the cell's name, what the spec language needs, the docs' LaTeX as pasted."""
    latex = LATEX[name].strip("\n")
    return (f"name: {name}\n" + (extras + "\n" if extras else "")
            + "equations: |\n" + textwrap.indent(latex, "  ", lambda line: True))


def _torch_cell(name, case, features, seed):
    torch.manual_seed(seed)
    module = getattr(torchrecurrent, name)(features, UNITS, **case.torch_kwargs)
    with torch.no_grad():
        for p in module.parameters():  # a different random draw for every weight; disabled biases stay zero buffers
            p.normal_(0.0, 0.5)
    return module


def _symbol_params(module, case):
    """torchrecurrent's weights as the spec's parameters, in the paper's orientation (rows, columns) of W x."""
    params = {}
    for entry in case.params.split():
        attr, names = entry.split("=")
        names = names.split(",")
        value = getattr(module, attr)
        chunks = value.chunk(len(names), 0) if value.dim() else [value]
        assert len(chunks) == len(names), (attr, value.shape, names)
        params.update({n: _np(c) for n, c in zip(names, chunks)})
    params.update({n: np.zeros(UNITS, "float32") for n in case.zeros})
    return params


def _run_torch(module, x, initial, states):
    """Steps torchrecurrent's cell over x (batch, time, features): outputs and the final states by name."""
    decoupled = isinstance(module, (torchrecurrent.base.DecoupledSingleStateCellBase,
                                    torchrecurrent.base.DecoupledDoubleStateCellBase))
    state = None
    if initial is not None:
        state = tuple(torch.tensor(initial[s]) for s in states)
        state = state if len(states) > 1 else state[0]
    outputs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            result = module(torch.tensor(x[:, t]), state)
            if decoupled:
                out, state = result
            else:
                state = result
                out = result[0] if isinstance(result, tuple) else result
            outputs.append(_np(out))
    finals = state if isinstance(state, tuple) else (state,)
    return np.stack(outputs, axis=1), {s: _np(v) for s, v in zip(states, finals)}


def _compare(name, case, seed):
    spec = spec_text(name, case.extras)
    ir = eqcell.analyze(spec)
    order = [s.name for s in ir.states]
    assert sorted(order) == sorted(case.states), (order, case.states)
    features = UNITS if case.square else FEATURES
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, STEPS, features)).astype("float32")
    module = _torch_cell(name, case, features, seed)
    layer = eqcell.load_layer(spec)(UNITS, return_sequences=True, return_state=True)
    layer(x)
    expected = layer.cell.symbol_weights()
    params = _symbol_params(module, case)
    layer.cell.set_symbol_weights({k: np.reshape(v, np.shape(expected.get(k, v))) for k, v in params.items()})
    sizes = {s: (features if s == ir.input else UNITS) for s in order}
    starts = {s: rng.standard_normal((BATCH, sizes[s])).astype("float32") for s in order}
    for initial in (None, starts):
        kwargs = {} if initial is None else {"initial_state": [initial[s] for s in order]}
        got = [ops.convert_to_numpy(t) for t in layer(x, **kwargs)]
        want_out, want_states = _run_torch(module, x, initial, case.states)
        start = "zeros" if initial is None else "random"
        assert np.std(want_out) > 1e-3, f"{name}: degenerate torchrecurrent outputs"
        assert_close(got[0], want_out, f"{name} outputs from {start} initial states")
        for s, g in zip(order, got[1:]):
            assert_close(g, want_states[s], f"{name} final {s} from {start} initial states")


def _marked(name, gap):
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=SpecError, reason=gap)) if gap else name


@pytest.mark.parametrize("name", [_marked(n, c.gap) for n, c in sorted(CASES.items())])
def test_cell_from_its_docs_equals_torchrecurrent(name):
    _compare(name, CASES[name], seed=sorted(CASES).index(name))


@pytest.mark.parametrize("name", [_marked(n, gap) for n, (_, gap) in sorted(DOCS_DIFFER.items())])
def test_cell_whose_docs_differ_from_its_code_generates(name):
    """Only generation: torchrecurrent computes another cell than its docs (DOCS_DIFFER says how)."""
    eqcell.generate(spec_text(name, EXTRAS.get(name, "")))


def test_every_cell_is_covered_once():
    cells = {n for n in torchrecurrent.__all__ if n.endswith("Cell")}
    assert set(CASES) | set(DOCS_DIFFER) == cells == set(LATEX)
    assert not set(CASES) & set(DOCS_DIFFER)


@pytest.mark.skipif(importlib.metadata.version("torchrecurrent") != PASTED_FROM,
                    reason=f"LATEX was pasted from torchrecurrent {PASTED_FROM}")
@pytest.mark.parametrize("name", sorted(LATEX))
def test_latex_is_the_docstring_verbatim(name):
    """Each pasted block is, line for line, the first `.. math::` block of the cell's docstring."""
    lines = getattr(torchrecurrent, name).__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(".. math::"))
    directive = len(lines[start]) - len(lines[start].lstrip())
    body = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= directive:
            break
        body.append(line)
    assert textwrap.dedent("\n".join(body)).strip("\n") == LATEX[name].strip("\n")


def _compare_torch_target(name, case, seed):
    """The torch target's layer of the same spec, against torchrecurrent's cell, with the same
    weights set through `set_symbol_weights`: outputs and final states from zero and random states."""
    spec = spec_text(name, case.extras)
    layer_class = eqcell.load_layer(spec, target="torch")
    ir = eqcell.analyze(spec)
    order = [s.name for s in ir.states]
    features = UNITS if case.square else FEATURES
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, STEPS, features)).astype("float32")
    module = _torch_cell(name, case, features, seed)
    sizes = {k.arg: k.default for k in ir.constants}
    layer = layer_class(features, UNITS, batch_first=True, **{a: v for a, v in sizes.items()
                                                               if a in layer_class._cell_arguments})
    cell = layer.cells[0]
    expected = cell.symbol_weights()
    params = _symbol_params(module, case)
    cell.set_symbol_weights({k: np.reshape(v, tuple(expected[k].shape)) for k, v in params.items() if k in expected})
    state_sizes = {s: (features if s == ir.input else UNITS) for s in order}
    starts = {s: rng.standard_normal((BATCH, state_sizes[s])).astype("float32") for s in order}
    for initial in (None, starts):
        hx = None
        if initial is not None:
            hx = tuple(torch.tensor(initial[s])[None] for s in order)
            hx = hx if len(hx) > 1 else hx[0]
        with torch.no_grad():
            output, final = layer(torch.tensor(x), hx)
        finals = final if isinstance(final, tuple) else (final,)
        want_out, want_states = _run_torch(module, x, initial, case.states)
        start = "zeros" if initial is None else "random"
        assert_close(_np(output), want_out, f"{name} (torch target) outputs from {start} initial states")
        for s, g in zip(order, finals):
            assert_close(_np(g[0]), want_states[s], f"{name} (torch target) final {s} from {start} initial states")


@pytest.mark.parametrize("name", [n for n, c in sorted(CASES.items()) if not c.gap])
def test_torch_target_from_its_docs_equals_torchrecurrent(name):
    _compare_torch_target(name, CASES[name], seed=sorted(CASES).index(name))
