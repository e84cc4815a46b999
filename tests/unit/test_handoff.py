"""Pipeline threads: a failure anywhere stops everyone, and the first error reaches the caller."""

import threading

import pytest

from pipeline.media.handoff import Aborted, Crew


def test_a_failing_consumer_stops_a_blocked_producer_and_its_error_is_raised():
    crew = Crew()
    handoff = crew.queue(2)

    def produce():
        for item in range(1000):  # far more than the queue holds: blocks once the consumer dies
            handoff.put(item)

    def consume():
        handoff.get()
        raise ValueError("encoder broke")

    crew.start("produce", produce)
    crew.start("consume", consume)
    with pytest.raises(ValueError, match="encoder broke"):
        crew.join()
    assert crew.abort.is_set()


def test_stop_releases_a_thread_waiting_on_an_empty_queue():
    crew = Crew()
    handoff = crew.queue(1)
    waiting = threading.Event()

    def consume():
        waiting.set()
        handoff.get()

    crew.start("consume", consume)
    assert waiting.wait(5)
    crew.stop()  # returns only once the thread has given up
    with pytest.raises(Aborted):
        handoff.put(1)


def test_items_pass_in_order():
    crew = Crew()
    handoff = crew.queue(3)
    received = []
    crew.start("produce", lambda: [handoff.put(i) for i in range(50)])
    crew.start("consume", lambda: received.extend(handoff.get() for _ in range(50)))
    crew.join()
    assert received == list(range(50))


def test_slots_bound_the_items_in_flight_and_give_up_on_abort():
    crew = Crew()
    slots = crew.slots(2)
    slots.take()
    slots.take()
    taken = threading.Event()

    def third():
        slots.take()
        taken.set()

    crew.start("third", third)
    assert not taken.wait(0.3)  # both slots are in use
    slots.give_back()
    assert taken.wait(5)
    crew.join()
    crew.abort.set()
    with pytest.raises(Aborted):
        slots.take()
