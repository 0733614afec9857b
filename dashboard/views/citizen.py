"""Citizen: one citizen's persona, its values round by round, its memory, and every prompt and raw answer."""

import json

import streamlit as st

from dashboard import charts, queries
from dashboard.catalog import run_manifest
from dashboard.ui import plain_errors, present, require_run

BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
HISTORY = {  # chart title: (y axis, columns), so amounts, wealth and beliefs each get an axis of their own
    "Takes, round by round": ("harvest", ("take", "fair_share", "requested")),
    "Wealth, round by round": ("wealth", ("wealth",)),
    "Norm beliefs, round by round": ("take ratio", ("personal_norm", "empirical_expectation",
                                                    "normative_expectation")),
}

st.title("Citizen")
run = require_run()
manifest, _ = run_manifest(run)
with plain_errors():
    with_calls = queries.llm_citizens(run)
    people = queries.personas(run)
default = with_calls[0] if with_calls else 0
citizen = int(st.number_input("Citizen", 0, max(int(manifest["citizens"]) - 1, 0), default, step=1))
if with_calls:
    st.caption(f"{len(with_calls)} citizens asked a model; the first is {with_calls[0]}. The Reasoning page "
               "lists every answer of every citizen in one table.")
with plain_errors():
    history = queries.citizen_history(run, citizen)
    calls = queries.llm_calls_of(run, citizen)
    collapses = queries.collapse_rounds(queries.rounds(run))

st.subheader("Persona")
persona = people.filter(people["citizen"] == citizen) if "citizen" in people.columns else people.clear()
if persona.is_empty():
    policy = history["policy"][-1] if "policy" in history.columns and history.height else "unknown"
    st.info(f"Citizen {citizen} has no persona: it follows the heuristic policy `{policy}`.")
else:
    row = persona.row(0, named=True)
    facts, traits = st.columns(2)
    values = row.get("values")
    values = ", ".join(values) if isinstance(values, list) else values
    facts.markdown(f"**Role:** {row.get('role')}  \n**Values:** {values}  \n"
                   f"**Hidden agenda:** {row.get('agenda') or 'none'}")
    scores = {name: float(row[name]) for name in BIG_FIVE if row.get(name) is not None}
    if scores:
        traits.altair_chart(charts.big_five(scores), width="stretch")

st.subheader("Round by round")
drawn = {title: (axis, present(history.columns, wanted)) for title, (axis, wanted) in HISTORY.items()}
drawn = {title: (axis, columns) for title, (axis, columns) in drawn.items() if columns}
if history.is_empty() or not drawn:
    st.info(f"No recorded round holds citizen {citizen}.")
for place, (title, (axis, columns)) in zip(st.columns(len(drawn) or 1), drawn.items()):
    if not history.is_empty():
        place.altair_chart(charts.metric_lines(history, columns, title, axis, collapses), width="stretch")

st.subheader("Memory, prompts and answers")
if calls.is_empty():
    st.info(f"Citizen {citizen} made no model call in this run (no llm_calls recorded for it).")
    st.stop()
memory = queries.memory_block(calls["prompt"][-1])
st.markdown(f"**Memory in its latest prompt (round {calls['round'][-1]}):**")
st.code(memory or "(empty)", language=None, wrap_lines=True)
for call in calls.iter_rows(named=True):
    flags = ", ".join(flag for flag in ("cached", "fallback") if call.get(flag))
    title = f"Round {call['round']} · {call['phase']}" + (f" · {flags}" if flags else "")
    with st.expander(title):
        for role, content in queries.prompt_messages(call["prompt"]):
            st.markdown(f"**{role}**")
            st.code(content, language=None, wrap_lines=True)
        st.markdown("**raw answer**")
        st.code(call["answer"], language="json" if str(call["answer"]).lstrip().startswith("{") else None,
                wrap_lines=True)
        st.caption(json.dumps({key: call.get(key) for key in ("prompt_tokens", "completion_tokens", "latency_s")}))
