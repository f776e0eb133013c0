"""The parts of the ``FeatureStore`` facade, one module per concept, mixed into the one class.

    registry_methods  definitions: load, plan, apply, list and describe what is registered
    training          training sets: point-in-time retrieval, its engine and manifest

``granero.feature_store.FeatureStore`` composes them with the backends (Spark, the offline and
online stores), materialization, push and online lookups; users import only that class. A part
reads the facade's attributes (``registry``, ``config``, ``access``, ``spark``...) and adds no
state of its own.
"""
