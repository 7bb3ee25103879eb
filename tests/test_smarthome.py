"""The smart-home command set and the word tokenizer (edgelib.text)."""

import numpy as np
import pytest

from edgelib import datasets
from edgelib.datasets import smarthome
from edgelib.text import PAD_ID, UNK_ID, WordTokenizer, normalize


@pytest.fixture(scope="module")
def ds():
    return datasets.load("smarthome")


def test_registered_and_described():
    assert "smarthome" in datasets.available()
    text = datasets.describe("smarthome")
    assert "Split by TEMPLATE" in text and "[UNK]" in text


def test_shapes_classes_and_balance(ds):
    assert ds.classes == smarthome.INTENTS and len(ds.classes) == 10
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.int32 and split.x.shape[1] == smarthome.MAX_LEN
        assert split.y.dtype == np.int64 and len(split.y) == len(split.x)
        counts = np.bincount(split.y, minlength=10)
        assert counts.min() >= 40, counts  # every intent present in every split
    assert len(ds.train) > 2000 and len(ds.test) > 1000
    assert ds.train.x.max() < ds.extra["tokenizer"].vocab_size
    assert (ds.train.x == UNK_ID).sum() == 0  # the vocabulary comes from the training split


def test_generation_is_deterministic(ds):
    again = datasets.load("smarthome")
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(again, name).x, getattr(ds, name).x)
        np.testing.assert_array_equal(getattr(again, name).y, getattr(ds, name).y)
    other = datasets.load("smarthome", seed=1)
    assert not np.array_equal(other.train.x, ds.train.x)


def test_split_by_template_so_test_phrasings_are_unseen(ds):
    templates = {k: set(v) for k, v in ds.extra["templates"].items()}
    assert not templates["train"] & templates["test"]
    assert not templates["train"] & templates["val"]
    assert not templates["val"] & templates["test"]
    texts = {k: set(v) for k, v in ds.extra["texts"].items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["val"]
    assert (ds.test.x == UNK_ID).any()  # some test words were never seen in training


def test_texts_encode_to_x_and_slots_mark_the_values(ds):
    tok = ds.extra["tokenizer"]
    for i in (0, 17, 500):
        text = ds.extra["texts"]["test"][i]
        np.testing.assert_array_equal(tok.encode(text, smarthome.MAX_LEN), ds.test.x[i])
        assert ds.classes[ds.test.y[i]] in smarthome.INTENTS
    tags = ds.extra["slot_tags"]
    for i, text in enumerate(ds.extra["texts"]["train"][:300]):
        words = text.split()
        named = [tags[t] for t in ds.extra["slots"]["train"][i][: len(words)]]
        for word, tag in zip(words, named, strict=True):
            if tag in ("B-room", "I-room"):
                assert any(word in room.split() for room in smarthome.SLOT_VALUES["room"])
            if tag == "B-temperature":
                assert 16 <= int(word) <= 28


def test_intent_id_and_bad_options():
    assert smarthome.intent_id("lights_on") == 0
    assert smarthome.intent_id("get_weather") == 9
    with pytest.raises(datasets.DatasetError, match="unknown intent 'open_window'.*lights_on"):
        smarthome.intent_id("open_window")
    with pytest.raises(datasets.DatasetError, match="too short"):
        datasets.load("smarthome", max_len=8)
    with pytest.raises(datasets.DatasetError, match="max_len must be an int"):
        datasets.load("smarthome", max_len=4)
    with pytest.raises(datasets.DatasetError, match="per_template"):
        smarthome.generate(per_template=0)


def test_word_tokenizer_round_trip_and_unknown_words():
    tok = WordTokenizer.fit(["Turn on the light.", "turn off the fan", "the fan"])
    assert tok.words[:3] == ("[PAD]", "[UNK]", "the")
    assert normalize("Hey, turn ON the kitchen-light!") == \
        ["hey", "turn", "on", "the", "kitchen", "light"]
    ids = tok.encode("turn on the oven", max_len=6)
    assert ids.dtype == np.int32 and ids.tolist()[4:] == [PAD_ID, PAD_ID]
    assert ids[3] == UNK_ID
    assert tok.decode(ids) == "turn on the [UNK]"
    assert tok.decode(ids, keep_padding=True).endswith("[PAD] [PAD]")
    assert tok.encode_batch(["fan", "the fan"], 3).shape == (2, 3)


def test_word_tokenizer_refuses_bad_input():
    tok = WordTokenizer.fit(["turn on the light"])
    with pytest.raises(ValueError, match="6 words, more than max_len=4"):
        tok.encode("turn on the light right now", max_len=4)
    assert tok.encode("turn on the light right now", 4, truncate=True).tolist() == \
        tok.encode("turn on the light", 4).tolist()
    with pytest.raises(ValueError, match=r"token id 99 is outside the vocabulary.*\[0, 6\)"):
        tok.decode([2, 99])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.check_ids(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="whole numbers"):
        tok.check_ids([1.5])
    with pytest.raises(TypeError, match="expected a string"):
        tok.encode(3, max_len=4)
    with pytest.raises(TypeError, match="list of texts"):
        tok.encode_batch("turn on", 4)
    with pytest.raises(ValueError, match="must start with"):
        WordTokenizer(["a", "b"])
