"""Salesforce Marketing Cloud: a Journey Builder custom activity (and decision split) served by Hub.

Each environment's activity lives under an unguessable URL (``/sfmc/{token}``): Journey Builder
loads its ``config.json`` and configuration UI there and posts each contact to ``execute``, a
JWT signed with the installed package's secret. User docs: ``docs/sfmc.md``.
"""
