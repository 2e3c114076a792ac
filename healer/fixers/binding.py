"""Where a candidate's inputs are: the pipeline as the sandbox must bind it for one patch.

Most patches change job code only, and the sandbox binds each input where the failed run
read it. A patch that edits healer.yml to follow a moved input (``rule:moved_input``)
says in its ``rebinding`` where the input now is — the place the rule found and checked, as an
absolute path or catalog table — so the sandbox reads the candidate's inputs from there,
whatever ``${VARS}`` the healing process happens to have.
"""

from __future__ import annotations

from dataclasses import replace


def candidate_pipeline(pipeline, patch):
    """``pipeline`` with the inputs ``patch`` moves bound where the patch points them."""
    rb = patch.rebinding
    if rb is None:
        return pipeline
    ghosts = [n for n in rb.dropped if n in pipeline.inputs and not pipeline.inputs[n].declared]
    if ghosts:  # names sqlglot found in the broken SQL (a typo, an old name) that the fixed job no longer reads
        pipeline = replace(pipeline, inputs={n: s for n, s in pipeline.inputs.items() if n not in ghosts})
    if rb.renamed:  # rule:manifest_drift: the same data under the job's name
        old, new = rb.renamed
        taken = pipeline.inputs.get(new)
        if old in pipeline.inputs and (taken is None or not taken.declared):
            # the job's name was an input only sqlglot found (undeclared): the declared one takes its place
            spec = replace(pipeline.inputs[old], name=new)
            inputs = {(new if n == old else n): (spec if n == old else s)
                      for n, s in pipeline.inputs.items() if n != new}
            return replace(pipeline, inputs=inputs)
    if rb.input not in pipeline.inputs:
        return pipeline
    spec = pipeline.inputs[rb.input]
    if rb.path:
        moved = replace(spec, path=rb.path, table=None, format=rb.format or spec.format)
    elif rb.table:
        moved = replace(spec, path=None, table=rb.table)
    else:
        return pipeline
    return replace(pipeline, inputs={**pipeline.inputs, rb.input: moved})


def binding_key(pipeline) -> tuple:
    """Equal keys mean the same inputs at the same places (one sandbox sample serves both)."""
    return tuple(sorted((n, s.location, s.format) for n, s in pipeline.inputs.items()))
