"""The matching page: a local web app over the sound-matching library (``python -m models.serve``).

``server.py`` builds the Starlette app (pages, uploads, results, the JSON API);
``jobs.py`` is the queue that runs one match at a time in a worker thread;
``uploads.py`` checks and stores what a browser sends; ``catalog.py`` lists
the models a page may use; ``results.py`` turns a match's JSON record into what
the page shows; ``serve_folder.py`` makes, locks and tidies the serve folder;
``library.py`` is the one module that calls the matching library. ``templates/`` and ``static/`` are the page itself (plain HTML, CSS
and JavaScript, no build step).
"""
