"""Safe, unique names from arbitrary user strings (file names, --name values)."""

from __future__ import annotations

import random

import pytest
from pxr import Sdf

from lift3d.naming import sanitize_name, unique_name


@pytest.mark.parametrize("text, expected", [
    ("../../etc/passwd.png", "passwd"),
    ("my car (2).jpg", "my_car_2"),
    ("C:\\Users\\ann\\photo 1.webp", "photo_1"),
    ("Ünïcode façade.JPG", "Unicode_facade"),
    ("2cars.png", "_2cars"),
    ("car.usda", "car"),
    ("x.tar.gz", "x_tar_gz"),
    ("  spaced   out  ", "spaced_out"),
    ("", "asset"),
    ("..", "asset"),
    ("/", "asset"),
    ("日本語.png", "asset"),
])
def test_sanitize_examples(text, expected):
    assert sanitize_name(text) == expected


def test_sanitize_uses_the_fallback():
    assert sanitize_name("???", fallback="photo") == "photo"


def test_path_traversal_never_survives():
    for text in ["../../etc/passwd.png", "..\\..\\windows\\system32", "a/../../b", "/abs/path/x.png", "~/.ssh/id"]:
        name = sanitize_name(text)
        assert "/" not in name and "\\" not in name and ".." not in name and "." not in name
        assert name and not name.startswith("~")


def test_sanitized_names_are_always_valid_identifiers():
    rng = random.Random(5)
    alphabet = "abcXYZ019 _-./\\:()[]{}'\"ÄéøßЖ語😀\t\n\x00"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90)))
        name = sanitize_name(text)
        assert Sdf.Path.IsValidIdentifier(name), (text, name)
        assert 1 <= len(name) <= 64


def test_long_names_are_truncated():
    assert sanitize_name("a" * 500 + ".png") == "a" * 64
    assert len(sanitize_name("9" * 100)) == 64


def test_unique_name_collisions():
    assert unique_name("car", []) == "car"
    assert unique_name("car", ["car"]) == "car_2"
    assert unique_name("car", ["car", "car_2", "car_3"]) == "car_4"
    assert unique_name("car", iter(["car", "car_3"])) == "car_2"
    taken: list[str] = []
    for _ in range(5):
        taken.append(unique_name(sanitize_name("my car (2).jpg"), taken))
    assert taken == ["my_car_2", "my_car_2_2", "my_car_2_3", "my_car_2_4", "my_car_2_5"]
    assert len(set(taken)) == len(taken)


def test_free_name_avoids_the_folder_entries_and_the_names_already_claimed(tmp_path):
    from lift3d.naming import free_name

    assert free_name("car photo.png", tmp_path / "missing") == "car_photo"
    (tmp_path / "car").mkdir()
    assert free_name("car.png", tmp_path) == "car_2"
    assert free_name("car.png", tmp_path, ["car_2"]) == "car_3"
