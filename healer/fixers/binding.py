"""Where a candidate's inputs are: the pipeline as the sandbox must bind it for one patch.

Most patches change job code only, and the sandbox binds each input where the failed run
read it. A patch that edits healer.yml to follow a moved input (``rule:moved_input``)
says in ``details`` where the input now is — the place the rule found and checked, as an
absolute path or catalog table — so the sandbox reads the candidate's inputs from there,
whatever ``${VARS}`` the healing process happens to have.
"""

from __future__ import annotations

from dataclasses import replace


def candidate_pipeline(pipeline, patch):
    """``pipeline`` with the inputs ``patch`` moves bound where the patch points them."""
    details = patch.details or {}
    ghosts = [n for n in details.get("drop_inputs", ()) if n in pipeline.inputs and not pipeline.inputs[n].declared]
    if ghosts:  # names sqlglot found in the broken SQL (a typo, an old name) that the fixed job no longer reads
        pipeline = replace(pipeline, inputs={n: s for n, s in pipeline.inputs.items() if n not in ghosts})
    rename = details.get("rename_input")  # rule:manifest_drift: the same data under the job's name
    taken = pipeline.inputs.get(rename.get("to")) if rename else None
    if rename and rename.get("from") in pipeline.inputs and (taken is None or not taken.declared):
        # the job's name was an input only sqlglot found (undeclared): the declared one takes its place
        spec = replace(pipeline.inputs[rename["from"]], name=rename["to"])
        inputs = {(rename["to"] if n == rename["from"] else n): (spec if n == rename["from"] else s)
                  for n, s in pipeline.inputs.items() if n != rename["to"]}
        return replace(pipeline, inputs=inputs)
    location, name = details.get("location"), details.get("input")
    if not location or name not in pipeline.inputs:
        return pipeline
    spec = pipeline.inputs[name]
    if location.get("path"):
        moved = replace(spec, path=location["path"], table=None, format=location.get("format", spec.format))
    elif location.get("table"):
        moved = replace(spec, path=None, table=location["table"])
    else:
        return pipeline
    return replace(pipeline, inputs={**pipeline.inputs, name: moved})


def binding_key(pipeline) -> tuple:
    """Equal keys mean the same inputs at the same places (one sandbox sample serves both)."""
    return tuple(sorted((n, s.location, s.format) for n, s in pipeline.inputs.items()))
