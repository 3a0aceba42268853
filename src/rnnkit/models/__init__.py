"""Models: the functional :class:`Model` (a graph of layers), :class:`Sequential` (a stack),
and the training engine they share (:mod:`.engine`, truncated BPTT in :mod:`.tbptt`)."""

from .engine import Engine
from .functional import Model
from .sequential import Sequential


def model_from_json(json_string, custom_objects=None):
    """Rebuild a model from ``model.to_json()`` (architecture only, fresh weights).

    Args:
        json_string: the JSON text (also accepts Keras' own ``{"class_name": "Sequential",
            "config": {...}}`` written by rnnkit).
        custom_objects: ``{class name: Layer subclass}`` for custom layers.

    Returns:
        :class:`rnnkit.Sequential`, or the functional :class:`rnnkit.Model`.

    Raises:
        ValueError: the text is not JSON or does not describe an rnnkit model.
    """
    import json

    try:
        record = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"model_from_json: not a JSON string ({e}); pass model.to_json()'s "
                         "output.") from None
    classes = {"Sequential": Sequential, "Model": Model}
    if not isinstance(record, dict) or record.get("class_name") not in classes or \
            not isinstance(record.get("config"), dict):
        got = record.get("class_name") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"model_from_json: expected a Sequential or functional Model's JSON "
                         f"({{'class_name': 'Sequential', 'config': ...}}), got {got!r}.")
    return classes[record["class_name"]].from_config(record["config"],
                                                     custom_objects=custom_objects)


__all__ = ["Engine", "Model", "Sequential", "model_from_json"]
