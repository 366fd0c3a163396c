"""Issue text for a task, written from templates with only what a user of the library would see.

The text shows a short interactive session (the reproduction the probe built from a failing
test), what it printed on the buggy code, and what the working code prints. It never names the
file, the line or the change that fixes it. Wording is picked with a generator seeded by the
task, so the same task always gets the same text.
"""

import random

TITLES_WRONG_VALUE = (
    "`{function}` returns a wrong result",
    "Unexpected output from `{function}`",
    "`{function}` gives an incorrect value",
    "Wrong result from `{function}` for a simple input",
)
TITLES_SHORT_VALUE = (
    "`{function}` returns {actual} instead of {expected}",
)
TITLES_UNEXPECTED_ERROR = (
    "`{function}` raises {actual_exception}",
    "{actual_exception} from `{function}` on valid input",
    "`{function}` crashes with {actual_exception}",
)
TITLES_MISSING_ERROR = (
    "`{function}` accepts invalid input instead of raising {expected_exception}",
    "No {expected_exception} from `{function}` for bad input",
)
TITLES_OTHER_ERROR = (
    "`{function}` raises {actual_exception} instead of {expected_exception}",
)
OPENERS = (
    "I ran into this while using `{package}`:",
    "Here is a small example that shows the problem:",
    "Minimal reproduction:",
    "Steps to reproduce:",
    "This is easy to reproduce in a Python shell:",
)
EXPECTED_VALUE = (
    "I expected:",
    "Expected output:",
    "What I expected to see instead:",
)
EXPECTED_ERROR = (
    "I expected it to raise `{expected_exception}`, as the working version does:",
    "Expected: the call is rejected with",
)
EXPECTED_NO_ERROR = (
    "I expected no error there, and then:",
    "This should work and then give:",
)
SECOND_EXAMPLE = (
    "Another case that looks related:",
    "The same happens here:",
    "A second example:",
)
CLOSINGS = (
    "",
    "Could you take a look?",
    "Am I misreading the documentation, or is this a bug?",
    "Thanks!",
)


def session(statements, result):
    """The statements as typed at a `>>>` prompt, up to where they stopped, and what was printed."""
    lines = []
    stop = result["stopped_at"]
    shown = statements if stop is None else statements[:stop + 1]
    for statement in shown:
        for k, line in enumerate(statement.splitlines()):
            lines.append((">>> " if k == 0 else "... ") + line)
        if "\n" in statement:
            lines.append("...")
    if result["exception"] is not None:
        lines.append("Traceback (most recent call last):")
        lines.append("  ...")
    lines.append(result["output"])
    return "\n".join(lines)


def fence(text):
    return "```\n" + text + "\n```"


def example_text(example, rng, package, first):
    parts = []
    if first:
        parts.append(rng.choice(OPENERS).format(package=package))
    else:
        parts.append(rng.choice(SECOND_EXAMPLE))
    parts.append(fence(session(example["statements"], example["actual"])))
    expected = example["expected"]
    stopped = example["actual"]["stopped_at"]
    if stopped is not None and stopped < len(example["statements"]) - 1:
        # The buggy code failed on a setup line; show what the finished example gives on working code.
        parts.append(rng.choice(EXPECTED_NO_ERROR))
        final = "\n".join((">>> " if k == 0 else "... ") + line
                           for k, line in enumerate(example["statements"][-1].splitlines()))
        parts.append(fence(final + "\n" + expected["output"]))
        return "\n\n".join(parts)
    if example["expects_exception"]:
        parts.append(rng.choice(EXPECTED_ERROR).format(expected_exception=example["expects_exception"]))
    else:
        parts.append(rng.choice(EXPECTED_VALUE))
    parts.append(fence(expected["output"]))
    return "\n\n".join(parts)


def title_for(example, rng, package):
    function = example["actual"].get("function") or example["expected"].get("function") or package
    actual, expected = example["actual"], example["expected"]
    fields = {"function": function, "actual": actual["output"], "expected": expected["output"],
              "actual_exception": actual["exception"], "expected_exception": example["expects_exception"]}
    if example["expects_exception"]:
        templates = TITLES_MISSING_ERROR if actual["exception"] is None else TITLES_OTHER_ERROR
    elif actual["exception"] is not None:
        templates = TITLES_UNEXPECTED_ERROR
    elif len(actual["output"]) <= 24 and len(expected["output"]) <= 24 and "`" not in actual["output"] + expected["output"]:
        templates = TITLES_WRONG_VALUE + TITLES_SHORT_VALUE
    else:
        templates = TITLES_WRONG_VALUE
    return rng.choice(templates).format(**fields)


def problem_statement(examples, package, seed_text):
    """The issue text for a task from its verified examples (one or two are shown)."""
    rng = random.Random(seed_text)
    first = examples[0]
    chosen = [first]
    for other in examples[1:]:
        if other["actual"].get("function") != first["actual"].get("function") or other["statements"][-1] != first["statements"][-1]:
            chosen.append(other)
            break
    if len(chosen) == 2 and rng.random() < 0.5:
        chosen = chosen[:1]
    parts = [title_for(first, rng, package)]
    for k, example in enumerate(chosen):
        parts.append(example_text(example, rng, package, k == 0))
    closing = rng.choice(CLOSINGS)
    if closing:
        parts.append(closing)
    return "\n\n".join(parts) + "\n"
