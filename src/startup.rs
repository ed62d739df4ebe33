//! `Application::build` binds and wires everything; `run_until_stopped` drives it.
