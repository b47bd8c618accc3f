"""The simulated world of a job: device-capacity and availability traces, and how clients map onto them.

``traces`` reads FedScale's ``client_device_capacity`` and ``client_behave_trace`` files (pickle or JSON) safely;
``trace_generator`` writes synthetic ones; ``client_profiles`` assigns trace entries to simulated clients
(``random_behv``, ``scale_sys``, ``scale_sys_percent``).
"""
