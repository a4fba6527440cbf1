from escli.sample import generate


def test_generation_is_deterministic_and_streams() -> None:
    first = list(generate(200, seed=3))
    assert first == list(generate(200, seed=3))
    assert first != list(generate(200, seed=4))
    assert len({d["category"] for d in generate(2000)}) == 20
    assert any(d["name"].startswith("=") for d in first)
    assert any("\n" in d["description"] for d in first)
    # `clearance` first appears in the last twentieth only
    assert all("clearance" not in d for d in first[:190]) and all("clearance" in d for d in first[190:])
