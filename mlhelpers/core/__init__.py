"""What every step shares: ``params`` (the typed run parameters), ``io`` (the one table reader),
``tables`` (compact dtypes, samples, hashes), ``artifacts`` (the registry of run-folder files and atomic
writes), ``schema`` (the model's input schema), ``metrics`` and ``models`` (the zoo and its preprocessing,
which saved models reference). Modules here import only each other.
"""
