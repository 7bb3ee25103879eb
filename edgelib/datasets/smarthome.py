"""Smart-home voice commands as text, generated from templates (deterministic)."""

from __future__ import annotations

import re

import numpy as np

from ..text import WordTokenizer
from ._core import Dataset, DatasetError, Split, register

SEED = 20260606
MAX_LEN = 16
PER_TEMPLATE = 60  # sentences drawn per template (fewer remain when the slots allow fewer)

INTENTS = (
    "lights_on", "lights_off", "set_temperature", "fan_on", "fan_off",
    "lock_door", "unlock_door", "play_music", "set_timer", "get_weather",
)

SLOT_VALUES = {
    "room": ("kitchen", "bedroom", "living room", "bathroom", "office", "hallway",
             "dining room", "guest room", "basement"),
    "temperature": tuple(str(t) for t in range(16, 29)),
    "door": ("front door", "back door", "garage door", "side door", "patio door"),
    "genre": ("jazz", "rock", "pop", "classical", "hip hop", "country", "blues", "reggae"),
    "duration": tuple(f"{n} {unit}" for unit in ("minutes", "seconds") for n in
                      (1, 2, 3, 5, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 60))
    + tuple(f"{n} hours" for n in (1, 2, 3)) + ("one minute", "ten minutes", "half an hour"),
    "day": ("today", "tomorrow", "tonight", "this weekend", "this morning",
            "this evening", "on monday", "on friday"),
}
SLOT_TAGS = ("O",) + tuple(f"{p}-{s}" for s in SLOT_VALUES for p in ("B", "I"))

# Polite openings and endings shared by every split (the template is the phrasing).
PREFIXES = ("", "", "", "please ", "hey ", "ok ")
SUFFIXES = ("", "", "", " please", " now", " thanks")

# intent -> {split: templates}. The split is by template: the validation and
# test phrasings never occur in training, only their words (mostly) do.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "lights_on": {
        "train": ("turn on the {room} light", "turn the {room} lights on",
                  "switch on the light in the {room}", "lights on in the {room}",
                  "turn on the lights", "can you switch the {room} lamp on",
                  "i need some light in the {room}"),
        "val": ("put the {room} lights on", "could you turn on the lamp in the {room}"),
        "test": ("switch the {room} light on", "turn the lights on in the {room}",
                 "would you turn on the {room} lamp", "{room} lights on"),
    },
    "lights_off": {
        "train": ("turn off the {room} light", "turn the {room} lights off",
                  "switch off the light in the {room}", "lights off in the {room}",
                  "turn off the lights", "can you switch the {room} lamp off",
                  "it is too bright in the {room}"),
        "val": ("put the {room} lights off", "could you turn off the lamp in the {room}"),
        "test": ("switch the {room} light off", "turn the lights off in the {room}",
                 "would you turn off the {room} lamp", "{room} lights off"),
    },
    "set_temperature": {
        "train": ("set the {room} to {temperature} degrees", "set the temperature to {temperature}",
                  "make it {temperature} degrees in the {room}",
                  "change the thermostat to {temperature}",
                  "i want the {room} at {temperature} degrees",
                  "heat the {room} to {temperature} degrees"),
        "val": ("adjust the {room} temperature to {temperature} degrees",
                "set the thermostat in the {room} to {temperature}"),
        "test": ("can you make the {room} {temperature} degrees",
                 "change the temperature in the {room} to {temperature}",
                 "warm the {room} up to {temperature} degrees",
                 "{temperature} degrees in the {room}"),
    },
    "fan_on": {
        "train": ("turn on the fan", "turn on the {room} fan", "switch the fan on",
                  "start the fan in the {room}", "can you run the ceiling fan", "fan on"),
        "val": ("power on the {room} fan", "start the ceiling fan"),
        "test": ("switch on the fan in the {room}", "could you start the {room} fan",
                 "turn the ceiling fan on", "i want the {room} fan running"),
    },
    "fan_off": {
        "train": ("turn off the fan", "turn off the {room} fan", "switch the fan off",
                  "stop the fan in the {room}", "can you shut off the ceiling fan", "fan off"),
        "val": ("power off the {room} fan", "stop the ceiling fan"),
        "test": ("switch off the fan in the {room}", "could you stop the {room} fan",
                 "turn the ceiling fan off", "shut the {room} fan off"),
    },
    "lock_door": {
        "train": ("lock the {door}", "make sure the {door} is locked", "can you lock up the {door}",
                  "lock all the doors", "lock the {door} for the night"),
        "val": ("secure the {door}", "i want the {door} locked"),
        "test": ("could you lock the {door}", "make sure you lock the {door}",
                 "lock up the house", "the {door} should be locked"),
    },
    "unlock_door": {
        "train": ("unlock the {door}", "open the {door}", "can you unlock the {door} for me",
                  "unlock all the doors", "let me in through the {door}"),
        "val": ("open up the {door}", "i want the {door} unlocked"),
        "test": ("could you unlock the {door}", "make sure you unlock the {door}",
                 "open the {door} for me", "the {door} should be unlocked"),
    },
    "play_music": {
        "train": ("play some {genre}", "play {genre} music", "put on some {genre} in the {room}",
                  "i want to listen to {genre}", "start playing {genre}",
                  "can you play music in the {room}"),
        "val": ("play some {genre} music", "music in the {room}"),
        "test": ("could you put some {genre} on", "let me listen to some {genre} music",
                 "play something in the {room}", "i want {genre} in the {room}"),
    },
    "set_timer": {
        "train": ("set a timer for {duration}", "start a {duration} timer", "timer for {duration}",
                  "remind me in {duration}", "count down {duration}",
                  "can you set a timer for {duration}"),
        "val": ("set the timer to {duration}", "alert me in {duration}"),
        "test": ("start a timer for {duration}", "i need a timer for {duration}",
                 "give me a {duration} timer", "{duration} timer"),
    },
    "get_weather": {
        "train": ("what is the weather {day}", "how is the weather {day}", "will it rain {day}",
                  "what is the forecast for {day}", "do i need an umbrella {day}",
                  "is it going to be sunny {day}"),
        "val": ("weather {day}", "tell me the weather forecast"),
        "test": ("what will the weather be like {day}", "could you tell me the forecast for {day}",
                 "is it going to rain {day}", "will it be sunny {day}"),
    },
}

_SLOT = re.compile(r"\{(\w+)\}")
SPLITS = ("train", "val", "test")


def intent_id(name: str) -> int:
    """The class index of an intent name, e.g. intent_id("fan_on") -> 3."""
    if name not in INTENTS:
        raise DatasetError(f"unknown intent {name!r}; the intents are: {', '.join(INTENTS)}")
    return INTENTS.index(name)


def _fill(template: str, rng: np.random.Generator) -> tuple[str, list[str]]:
    """A sentence from `template` with random slot values, and its BIO slot tag per word."""
    words: list[str] = []
    tags: list[str] = []
    prefix = PREFIXES[rng.integers(len(PREFIXES))]
    suffix = SUFFIXES[rng.integers(len(SUFFIXES))]
    for piece in (prefix + template + suffix).split():
        match = _SLOT.fullmatch(piece)
        if match is None:
            words.append(piece)
            tags.append("O")
            continue
        slot = match.group(1)
        values = SLOT_VALUES[slot]
        value = values[rng.integers(len(values))].split()
        words += value
        tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(value) - 1)
    return " ".join(words), tags


def generate(seed: int = SEED, per_template: int = PER_TEMPLATE) -> dict[str, list[dict]]:
    """The sentences of every split: dicts with text, intent, template, tags.

    Deterministic: a generator seeded with `seed` draws `per_template`
    sentences per template (slot values, opening, ending); duplicates within
    a split are dropped, and a validation or test sentence that happens to
    equal a training sentence is dropped too.
    """
    if not isinstance(per_template, int) or per_template < 1:
        raise DatasetError(f"per_template must be a positive int, got {per_template!r}")
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    seen: dict[str, set[str]] = {s: set() for s in SPLITS}
    for split in SPLITS:
        for intent in INTENTS:
            for template in TEMPLATES[intent][split]:
                for _ in range(per_template):
                    text, tags = _fill(template, rng)
                    if text in seen[split] or (split != "train" and text in seen["train"]):
                        continue
                    seen[split].add(text)
                    out[split].append({"text": text, "intent": intent, "template": template,
                                       "tags": tags})
    return out


def _encode_tags(tags: list[str], max_len: int) -> np.ndarray:
    out = np.zeros(max_len, dtype=np.int64)
    out[: len(tags)] = [SLOT_TAGS.index(t) for t in tags]
    return out


@register("smarthome", "smart-home text commands, 10 intents, generated from templates, "
                       "test phrasings unseen")
def load_smarthome(max_len: int = MAX_LEN, seed: int = SEED,
                   per_template: int = PER_TEMPLATE) -> Dataset:
    """Smart-home commands as text ("turn on the kitchen light"), 10 intents.

    Source: generated here, deterministically (no file, no download), from
    hand-written templates (`TEMPLATES`) with slots filled from `SLOT_VALUES`
    (rooms, temperatures 16-28, doors, music genres, durations, days) and an
    optional polite opening or ending ("please", "hey", "thanks" ...), by a
    generator seeded with `seed`; `per_template` draws per template,
    duplicates dropped.
    Intents (classes): lights_on, lights_off, set_temperature, fan_on,
    fan_off, lock_door, unlock_door, play_music, set_timer, get_weather.
    Split by TEMPLATE, not by sentence: every intent has 5-7 training
    templates, 2 validation and 4 test templates, so validation and test
    hold phrasings the model never saw in training ("would you turn on the
    {room} lamp" is a test template).
    Tokens: word-level `edgelib.text.WordTokenizer` fitted on the TRAINING
    sentences only: 0 = [PAD], 1 = [UNK]; a word that occurs only in
    validation or test (e.g. "warm", "would") becomes [UNK].
    x: int32 token ids (N, max_len), padded at the end with 0; y: int64
    intent index. extra: "tokenizer", "texts" / "templates" (per split,
    lists of strings), "slots" (per split, int64 (N, max_len) indices into
    "slot_tags", BIO tags such as B-room, I-room; padding is "O"),
    "slot_tags", "max_len".
    License: CC0 (the templates and the generator are part of the course).
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 8:
        raise DatasetError(f"max_len must be an int >= 8 (the longest command), got {max_len!r}")
    sentences = generate(seed, per_template)
    tokenizer = WordTokenizer.fit(s["text"] for s in sentences["train"])
    splits, texts, templates, slots = {}, {}, {}, {}
    for split, rows in sentences.items():
        texts[split] = [r["text"] for r in rows]
        templates[split] = [r["template"] for r in rows]
        try:
            x = tokenizer.encode_batch(texts[split], max_len)
        except ValueError as exc:
            raise DatasetError(f"max_len={max_len} is too short for the commands: {exc}") from exc
        y = np.array([intent_id(r["intent"]) for r in rows], dtype=np.int64)
        slots[split] = np.stack([_encode_tags(r["tags"], max_len) for r in rows])
        splits[split] = Split(x, y)
    return Dataset(
        name="smarthome",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        classes=INTENTS,
        description="smart-home text commands, 10 intents, split by template (unseen phrasings)",
        source="generated by edgelib.datasets.smarthome from hand-written templates",
        license="CC0",
        extra={"tokenizer": tokenizer, "texts": texts, "templates": templates, "slots": slots,
               "slot_tags": SLOT_TAGS, "max_len": max_len},
    )
