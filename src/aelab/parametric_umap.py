"""A UMAP-regularised autoencoder objective (Sainburg, McInnes & Gentner 2021, "Parametric UMAP").

The MLP autoencoder's encoder is trained with UMAP's fuzzy-graph cross-entropy on the kNN graph of
the training images, plus the reconstruction loss; the decoder is trained with it, so the 2-D plane
is organised like a UMAP embedding and still decodes. umap-learn supplies what it already does (the
fuzzy simplicial set, the ``a, b`` curve fit); the torch training is ours, so the objective plugs
into :func:`aelab.train.fit` like every other loss: ``objective(model, x, noise_generator)``.

Each call samples a fresh batch of graph edges with probability proportional to their weight (the
expectation of UMAP's per-epoch edge schedule, without its bookkeeping). The negatives are the codes
of the batch ``x``: ``fit`` hands the objective a uniformly shuffled batch of training images, so
they are uniform samples of the training set, as UMAP's negatives are, and they cost no encoder
pass (``x`` is encoded for the reconstruction anyway). Rather than drawing ``negatives`` of them per
edge, every edge head is repelled from every code of the batch, weighted so that each head still
counts ``negatives`` negative pairs: the same objective in expectation, with less noise, for a few
thousand extra distances. The encoder runs on ``x`` plus the two ends of each edge, so a step costs
about ``1 + 2 E / B`` encoder passes of a plain AE step (``E`` edges, batch ``B``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aelab.data.scaling import unit
from aelab.train import Prepare

DIST_EPS = 1e-3  # added to squared code distances: UMAP's own 0.001 in its repulsive gradient


@dataclass(frozen=True)
class FuzzyGraph:
    """The symmetrised fuzzy simplicial set of a training set, as directed edges ``(head, tail, weight)``.

    Both directions of every edge are kept (the matrix is symmetric), as UMAP's optimiser does, so a
    sampled edge moves both of its ends through the encoder. ``n_vertices`` is the number of images
    the graph was built on: the objective checks that its training set is that one.
    """

    head: np.ndarray  # int64 (E,)
    tail: np.ndarray  # int64 (E,)
    weight: np.ndarray  # float32 (E,), in (0, 1]
    n_vertices: int

    def __len__(self) -> int:
        return len(self.weight)


def fuzzy_graph(images: torch.Tensor, n_neighbors: int = 15, seed: int = 0, knn: str = "exact") -> FuzzyGraph:
    """UMAP's fuzzy graph of uint8 images (N, C, H, W), on their flattened pixels scaled to [0, 1].

    ``n_neighbors`` counts each image itself, as umap-learn does. ``knn="exact"`` finds neighbours
    with scikit-learn's brute-force search: exact, deterministic and without numba compile time,
    which suits sets up to a few tens of thousands; ``"nndescent"`` uses umap-learn's approximate
    search (pynndescent, seeded by ``seed``) for larger ones.
    """
    from umap.umap_ import fuzzy_simplicial_set, nearest_neighbors

    n = len(images)
    if n_neighbors < 2 or n_neighbors >= n:
        raise ValueError(f"n_neighbors must be in [2, {n - 1}] ({n} images), got {n_neighbors}")
    x = images.reshape(n, -1).float().div(255.0).cpu().numpy()
    rng = np.random.RandomState(seed)
    if knn == "exact":
        from sklearn.neighbors import NearestNeighbors

        # queried without X, sklearn leaves each point out of its own list; it goes first at distance exactly 0.
        # Queried with X, rounding can give a point a tiny nonzero distance to itself, which UMAP would take
        # for the distance to its nearest neighbour, so no neighbour would reach membership 1.
        d, i = NearestNeighbors(n_neighbors=n_neighbors - 1, algorithm="brute").fit(x).kneighbors()
        dists = np.concatenate([np.zeros((n, 1)), d], axis=1)
        idx = np.concatenate([np.arange(n)[:, None], i], axis=1)
    elif knn == "nndescent":
        idx, dists, _ = nearest_neighbors(x, n_neighbors, "euclidean", {}, False, rng, n_jobs=1)
    else:
        raise ValueError(f"knn must be 'exact' or 'nndescent', got {knn!r}")
    graph, _, _ = fuzzy_simplicial_set(
        x, n_neighbors, rng, "euclidean", knn_indices=idx.astype(np.int64), knn_dists=dists.astype(np.float32)
    )
    return graph_edges(graph)


def graph_edges(matrix) -> FuzzyGraph:
    """A :class:`FuzzyGraph` from a square sparse fuzzy-set matrix (:func:`fuzzy_graph`'s, or ``umap.UMAP().graph_``).

    A fitted ``umap.UMAP`` already holds the graph of its training set, so a run that fits umap-learn
    anyway reuses that graph rather than searching the neighbours a second time.
    """
    coo = matrix.tocoo()
    if coo.shape[0] != coo.shape[1]:
        raise ValueError(f"a fuzzy graph's matrix is square, got {coo.shape}")
    coo.sum_duplicates()
    keep = coo.data > 0
    return FuzzyGraph(
        head=coo.row[keep].astype(np.int64),
        tail=coo.col[keep].astype(np.int64),
        weight=coo.data[keep].astype(np.float32),
        n_vertices=coo.shape[0],
    )


def standardised(codes: np.ndarray, scale: float = 3.0) -> np.ndarray:
    """``codes`` centred and scaled to overall standard deviation ``scale``: a warm start's target (see :func:`warm_start`).

    A layout's own scale is arbitrary (umap-learn's spans tens of units); one fixed scale keeps the
    encoder's first steps and the decoder's input range the same whatever layout the start comes from.
    """
    codes = codes - codes.mean(axis=0)
    return (codes * (scale / max(float(codes.std()), 1e-12))).astype(np.float32)


def spectral_codes(graph: FuzzyGraph, dim: int = 2, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    """UMAP's own starting layout: the graph's spectral embedding (umap-learn), scaled to standard deviation ``scale``.

    umap-learn starts its optimisation here rather than at random because the spectral layout already
    places whole clusters where the graph says; :func:`warm_start` gives the encoder that start.
    """
    import scipy.sparse as sp
    from umap.spectral import spectral_layout

    n = graph.n_vertices
    matrix = sp.coo_matrix((graph.weight, (graph.head, graph.tail)), shape=(n, n)).tocsr()
    return standardised(spectral_layout(None, matrix, dim, np.random.RandomState(seed)), scale)


def warm_start(
    model: nn.Module,
    train: torch.Tensor,
    codes: np.ndarray,
    prepare: Prepare = unit,
    steps: int = 500,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
) -> float:
    """Regress the encoder's codes of ``train`` onto ``codes``; returns the last MSE.

    ``codes`` is a layout of the training set: umap-learn's own embedding (:func:`standardised`), as
    the study uses, or the graph's spectral layout (:func:`spectral_codes`), UMAP's own starting
    point. A deterministic start for the weights (its own generator and optimizer, the decoder
    untouched), run once before ``fit``; a resumed ``fit`` loads its checkpoint over it, so resuming
    stays exact. The fuzzy cross-entropy then only has to refine a layout that already places whole
    classes, where from a random start a CPU budget of steps is spent pulling scattered pieces of each
    class together (benchmarks/RESULTS.md measures the three starts).
    """
    if len(codes) != len(train):
        raise ValueError(f"{len(codes)} target codes for {len(train)} training images")
    device = next(model.parameters()).device
    encoder = _encoder_module(model)
    target = torch.as_tensor(codes, dtype=torch.float32, device=device)
    params = list(getattr(encoder, "encoder", encoder).parameters())
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.train()
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.randint(0, len(train), (min(batch_size, len(train)),), generator=gen)
        z = encoder.encode(prepare(train[idx].to(device))).float()
        loss = F.mse_loss(z, target[idx.to(device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.train(was_training)
    return float(loss.detach())


def ab_params(min_dist: float = 0.1, spread: float = 1.0) -> tuple[float, float]:
    """UMAP's ``a, b`` for ``q(d) = 1 / (1 + a d^(2b))``, fitted by umap-learn to its offset exponential."""
    from umap.umap_ import find_ab_params

    a, b = find_ab_params(spread, min_dist)
    return float(a), float(b)


def _log_u(za: torch.Tensor, zb: torch.Tensor, a: float, b: float, eps: float) -> torch.Tensor:
    """``log(a (d^2 + eps)^b)``: the low-dimensional similarity is ``q = 1 / (1 + u) = sigmoid(-log u)``."""
    d2 = (za.float() - zb.float()).pow(2).sum(dim=-1)
    return math.log(a) + b * torch.log(d2 + eps)


def umap_cross_entropy(
    z_head: torch.Tensor,
    z_tail: torch.Tensor,
    z_neg_head: torch.Tensor,
    z_neg_tail: torch.Tensor,
    a: float,
    b: float,
    repulsion: float = 1.0,
    eps: float = DIST_EPS,
) -> torch.Tensor:
    """UMAP's fuzzy cross-entropy with negative sampling: mean over all positive and negative pairs.

    With ``u = a (d^2 + eps)^b`` and ``q = 1 / (1 + u)``, a positive pair (a sampled graph edge)
    costs ``-log q = softplus(log u)`` and a negative pair ``-log(1 - q) = softplus(-log u)``,
    times ``repulsion``. Written through ``log u`` both terms are exact softplus forms, stable at any
    distance. ``eps`` keeps coincident codes finite: with UMAP's 0.001 the gradient of the negative
    term is UMAP's own repulsive force ``2b / ((eps + d^2)(1 + u))``, so a collapsed start still
    spreads, where clipping ``q`` (as earlier parametric UMAP did) gives such pairs no gradient at all.
    The mean runs over ``P + N`` pairs (P positives, N negatives), as Parametric UMAP's loss does.
    """
    pos = F.softplus(_log_u(z_head, z_tail, a, b, eps))
    neg = F.softplus(-_log_u(z_neg_head, z_neg_tail, a, b, eps))
    return (pos.sum() + repulsion * neg.sum()) / max(1, len(pos) + len(neg))


def umap_cross_entropy_pool(
    z_head: torch.Tensor,
    z_tail: torch.Tensor,
    z_pool: torch.Tensor,
    a: float,
    b: float,
    negatives: int = 5,
    repulsion: float = 1.0,
    eps: float = DIST_EPS,
) -> torch.Tensor:
    """:func:`umap_cross_entropy` with ``negatives`` uniform draws from ``z_pool`` per edge, in expectation.

    Every head is paired with every pool code and the repulsive terms are averaged over the pool, so
    each edge weighs one positive and ``negatives`` negative pairs, exactly what ``negatives`` uniform
    draws from the pool give on average; the mean is over those ``E (1 + negatives)`` pairs.
    """
    pos = F.softplus(_log_u(z_head, z_tail, a, b, eps))
    neg = F.softplus(-_log_u(z_head[:, None, :], z_pool[None, :, :], a, b, eps)).mean(dim=1)
    return (pos.sum() + repulsion * negatives * neg.sum()) / max(1, len(pos) * (1 + negatives))


def _encoder_module(net: nn.Module) -> nn.Module:
    """The autoencoder under a DDP (``.module``) or ``torch.compile`` (``._orig_mod``) wrapper, for ``encode``.

    Edge ends go through the bare encoder: under DDP the same step also runs the wrapper's forward on
    ``x``, and autograd sums both uses of each parameter before DDP's per-parameter hook reduces it.
    """
    while True:
        inner = getattr(net, "module", None) or getattr(net, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return net
        net = inner


class UMAPObjective:
    """``reconstruction(x) + weight * UMAP cross-entropy`` on a fresh sample of graph edges per call.

    A class rather than a closure so the training set it holds moves to the model's device once, on
    the first call, and stays there. Called by ``evaluate_loss`` on test batches with its fixed
    generator, it returns the same sum: the test images' reconstruction plus the UMAP loss on an
    edge sample that is the same every epoch (the generator is re-seeded each time), with the test
    codes as the negatives' pool. So test losses compare across epochs and the UMAP term says how well the
    current encoder keeps the training graph, which is what it was asked to learn.
    """

    def __init__(
        self,
        graph: FuzzyGraph,
        train: torch.Tensor,
        a: float,
        b: float,
        weight: float,
        edges_per_step: int = 256,
        negatives: int = 5,
        recon: str = "bce",
        prepare: Prepare = unit,
        repulsion: float = 1.0,
    ) -> None:
        if graph.n_vertices != len(train):
            raise ValueError(f"the graph has {graph.n_vertices} vertices but the training set {len(train)} images")
        if len(graph) == 0:
            raise ValueError("the graph has no edges")
        if recon not in ("bce", "mse"):
            raise ValueError(f"recon must be 'bce' or 'mse', got {recon!r}")
        if edges_per_step < 1 or negatives < 0 or weight < 0:
            raise ValueError("edges_per_step must be >= 1, negatives and weight >= 0")
        self.train = train
        self.a, self.b, self.weight, self.repulsion = float(a), float(b), float(weight), float(repulsion)
        self.edges_per_step, self.negatives, self.recon, self.prepare = edges_per_step, negatives, recon, prepare
        self.head = torch.from_numpy(graph.head)
        self.tail = torch.from_numpy(graph.tail)
        # sampling by inverse CDF: O(E log n) per step, where torch.multinomial rebuilds its table every call
        self.cdf = torch.from_numpy(np.cumsum(graph.weight, dtype=np.float64))

    def _on(self, device: torch.device) -> None:
        if self.cdf.device != device:
            self.head, self.tail, self.cdf = self.head.to(device), self.tail.to(device), self.cdf.to(device)
        if self.train.device != device:
            self.train = self.train.to(device)

    def sample_edges(
        self, n: int, gen: torch.Generator | None, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` edges drawn with replacement, each with probability proportional to its weight."""
        self._on(device)
        u = torch.rand(n, generator=gen, device=device, dtype=torch.float64) * self.cdf[-1]
        e = torch.searchsorted(self.cdf, u, right=True).clamp_(max=len(self.cdf) - 1)
        return self.head[e], self.tail[e]

    def __call__(self, model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        out = model(x)
        if self.recon == "bce":
            loss = F.binary_cross_entropy_with_logits(out["logits"].float(), x)
        else:
            loss = F.mse_loss(out["x_hat"].float(), x)
        if self.weight == 0:
            return loss
        device = x.device
        head, tail = self.sample_edges(self.edges_per_step, gen, device)
        ends = self.prepare(self.train[torch.cat([head, tail])])
        z_ends = _encoder_module(model).encode(ends).float()
        z_head, z_tail = z_ends[: len(head)], z_ends[len(head) :]
        z_x = out["z"].float().flatten(1)
        umap = umap_cross_entropy_pool(z_head, z_tail, z_x, self.a, self.b, self.negatives, self.repulsion)
        return loss + self.weight * umap


umap_objective = UMAPObjective
"""The UMAP-regularised AE objective for :func:`aelab.train.fit`: ``train`` is the uint8 training set the
graph was built on (indices are the graph's vertices); ``prepare`` must be the one ``fit`` uses, so edge
ends and batches reach the encoder alike."""
