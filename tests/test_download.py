import hashlib

import pytest

from aelab import UserError
from aelab.data import mnist as mnist_data
from aelab.data.download import download, sha256_of

from conftest import write_mnist_folder
from httpserver import dead_url, serve


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_download_verifies_and_renames(tmp_path):
    body = bytes(range(256)) * 400
    with serve({"/f.bin": body}) as (url, _):
        out = download([url + "/f.bin"], tmp_path / "f.bin", _sha(body))
    assert out.read_bytes() == body
    assert not (tmp_path / "f.bin.part").exists()


def test_corrupt_file_is_a_checksum_error_and_leaves_nothing(tmp_path):
    with serve({"/f.bin": b"tampered"}) as (url, _), pytest.raises(UserError, match="checksum mismatch"):
        download([url + "/f.bin"], tmp_path / "f.bin", _sha(b"original"))
    assert list(tmp_path.iterdir()) == []


def test_next_mirror_when_one_is_down_or_bad(tmp_path):
    body = b"payload" * 1000
    with serve({"/f.bin": b"wrong"}) as (bad, _), serve({"/f.bin": body}) as (good, log):
        out = download([dead_url() + "/f.bin", bad + "/f.bin", good + "/f.bin"], tmp_path / "f.bin", _sha(body))
    assert out.read_bytes() == body and log == [("/f.bin", None)]


def test_resume_from_partial_file(tmp_path):
    body = bytes(range(256)) * 100
    (tmp_path / "f.bin.part").write_bytes(body[:1000])
    with serve({"/f.bin": body}) as (url, log):
        download([url + "/f.bin"], tmp_path / "f.bin", _sha(body))
    assert log == [("/f.bin", "bytes=1000-")]
    assert sha256_of(tmp_path / "f.bin") == _sha(body)


def test_server_without_range_support_restarts(tmp_path):
    body = b"abcdef" * 500
    (tmp_path / "f.bin.part").write_bytes(b"zzz")
    with serve({"/f.bin": body}, support_range=False) as (url, _):
        download([url + "/f.bin"], tmp_path / "f.bin", _sha(body))
    assert (tmp_path / "f.bin").read_bytes() == body


def test_existing_verified_file_is_not_fetched_again(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"done")
    download([dead_url() + "/f.bin"], tmp_path / "f.bin", _sha(b"done"))


def _mnist_files(tmp_path):
    folder = write_mnist_folder(tmp_path / "src", 50, 20)
    return {f"/mnist/{p.name}": p.read_bytes() for p in folder.iterdir()}


def test_load_mnist_downloads_into_the_cache(tmp_path, isolated_cache, monkeypatch):
    files = _mnist_files(tmp_path)
    monkeypatch.setattr(mnist_data, "SHA256", {k.split("/")[-1]: _sha(v) for k, v in files.items()})
    with serve(files) as (url, _):
        data = mnist_data.load_mnist(mirrors=(dead_url() + "/mnist/", url + "/mnist/"))
    assert data.source.startswith("downloaded") and len(data.train) == 50 and len(data.test) == 20
    again = mnist_data.load_mnist(mirrors=())  # now served from the cache
    assert again.source.startswith("cache")


def test_load_mnist_falls_back_when_every_mirror_fails(tmp_path, isolated_cache, capsys):
    files = _mnist_files(tmp_path)
    files = {k: v + b"x" for k, v in files.items()}  # every file fails its checksum
    with serve(files) as (url, _):
        data = mnist_data.load_mnist(mirrors=(url + "/mnist/",))
    assert "built-in" in data.source and len(data.train) == 4000
    assert "could not download MNIST, using the built-in" in capsys.readouterr().err
    assert not any(p.name.endswith(".gz") for p in (isolated_cache / "mnist").iterdir())


def _aelab_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("aelab")]


def test_failed_download_names_every_mirror_and_why_in_one_line(tmp_path, isolated_cache, capsys):
    """Each mirror fails differently: nobody listening, no such file, wrong bytes, no such host."""
    files = _mnist_files(tmp_path)
    name = "train-images-idx3-ubyte.gz"
    tampered = files[f"/mnist/{name}"] + b"x"
    dead = dead_url()
    with serve({f"/mnist/{name}": tampered}) as (bad, _), serve({}) as (empty, _):
        data = mnist_data.load_mnist(
            mirrors=(dead + "/mnist/", empty + "/mnist/", bad + "/mnist/", "http://mirror.invalid/mnist/"), timeout=5
        )
    assert "built-in" in data.source
    host = lambda url: url.removeprefix("http://") + "/mnist"  # noqa: E731
    got = hashlib.sha256(tampered).hexdigest()[:12]
    want = mnist_data.SHA256[name][:12]
    assert _aelab_lines(capsys.readouterr().err) == [
        "aelab: could not download MNIST, using the built-in 5,000-digit sample; tried "
        f"{host(dead)}: connection refused; {host(empty)}: HTTP 404 Not Found; "
        f"{host(bad)}: checksum mismatch: got {got}..., expected {want}...; "
        "mirror.invalid/mnist: host not found (no network or DNS?)"
    ]


def test_mirrors_failing_alike_share_one_reason(tmp_path, isolated_cache, capsys):
    a, b = dead_url(), dead_url()
    mnist_data.load_mnist(mirrors=(a + "/", b + "/"), timeout=5)
    (line,) = _aelab_lines(capsys.readouterr().err)
    assert line.endswith(f"; tried {a.removeprefix('http://')}, {b.removeprefix('http://')}: connection refused")


def test_download_error_lists_the_mirrors_without_cutting_words(tmp_path):
    long_reason_mirrors = [dead_url() + "/f.bin" for _ in range(6)]
    with pytest.raises(UserError) as e:
        download(long_reason_mirrors, tmp_path / "f.bin", _sha(b"x"))
    message = str(e.value)
    assert message.startswith("could not download f.bin: tried 127.0.0.1:")
    assert message.count("127.0.0.1:") == 6 and message.endswith(": connection refused")
