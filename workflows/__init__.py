"""The queue layer: dramatiq broker set-up, thin actors, reconciler, scheduler.

Import ``workflows.broker`` before anything that declares an actor; the
``workflows.actors`` module does so itself.
"""
