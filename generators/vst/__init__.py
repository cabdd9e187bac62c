"""Real synthesizer plugins (VST2 ``.so``, VST3), hosted by DawDreamer, as sound generators.

* :mod:`generators.vst.config`: plugin configs (the JSON format), read and checked;
* :mod:`generators.vst.hosts`: the plugin host processes and their protocol;
* :mod:`generators.vst.host_main`: the host process itself (a script of its own);
* :mod:`generators.vst.describe`: a plugin's parameters, and a config template;
* :mod:`generators.vst.synth`: :class:`~generators.vst.synth.VSTGenerator`;
* :mod:`generators.vst.cli`: ``python -m generators.vst describe | check | run``.
"""
