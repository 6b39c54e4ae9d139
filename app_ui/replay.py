"""Replaying training from its snapshots: the slider labels, and play/pause, shared by pages.

A page keeps the position under its own session key (bound to the URL) and draws what follows
it inside a fragment that ticks while playing: `advance` moves one snapshot per tick and stops
at the final weights.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

TICK_S = 0.8  # seconds per snapshot while playing


def replay_labels(steps: np.ndarray, final_step: int | None) -> list[str]:
    """Slider labels, one per snapshot; the last one is the final weights."""
    labels = [f"step {int(s)}" for s in steps]
    final = f"final (step {final_step})" if final_step is not None else "final"
    if final_step is None or not labels or int(steps[-1]) != final_step:
        labels.append(final)
    else:
        labels[-1] = final
    return labels


def _toggle(labels: list[str], time_key: str, play_key: str) -> None:
    st.session_state.pop(f"_{play_key}_at", None)
    playing = not st.session_state.get(play_key, False)
    st.session_state[play_key] = playing
    if playing and st.session_state.get(time_key) == labels[-1]:
        st.session_state[time_key] = labels[0]  # play from the start when at the end


def playing(labels: list[str], time_key: str, play_key: str) -> bool:
    """Whether the page is playing (call before drawing; fixes a position a link got wrong)."""
    if st.session_state.get(time_key) not in labels:
        st.session_state.pop(time_key, None)  # e.g. a link from another run
    return bool(st.session_state.get(play_key)) and len(labels) > 1


def play_button(labels: list[str], time_key: str, play_key: str, key: str) -> None:
    on = playing(labels, time_key, play_key)
    st.button("Pause" if on else "Play", key=key, on_click=_toggle,
              args=(labels, time_key, play_key), disabled=len(labels) < 2,
              icon=":material/pause:" if on else ":material/play_arrow:",
              help="Replay the training, one snapshot at a time.")


def advance(labels: list[str], time_key: str, play_key: str) -> None:
    """While playing, move to the next snapshot; at the final weights, stop (whole-page rerun,
    so the fragment's timer ends). Call at the top of the fragment, before the slider."""
    if not st.session_state.get(play_key):
        return
    # One step per tick at most: the fragment also runs with every full run of the page.
    last = st.session_state.get(f"_{play_key}_at")
    now = time.monotonic()
    if last is not None and now - last < TICK_S * 0.9:
        return
    st.session_state[f"_{play_key}_at"] = now
    here = st.session_state.get(time_key, labels[-1])
    nxt = labels.index(here) + 1 if here in labels else len(labels) - 1
    if nxt >= len(labels) - 1:
        st.session_state[play_key] = False
        st.session_state[time_key] = labels[-1]
        st.rerun(scope="app")
    st.session_state[time_key] = labels[nxt]
