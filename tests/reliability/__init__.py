"""Reliability suite (issue #5 part 4, SPEC section 10): bad inputs, their clear errors, nothing half-written.

Every case checks the error names the file / field / date / constraint, and that the target
(a previous dataset, the risk store, ``features/``) is byte-identical afterwards (sha256 of every file),
with no temp or backup directory left beside it.  The 8 bugs the suite found were fixed.

Case (test)                                            Expected
-----------------------------------------------------  ----------------------------------------------------
Dataset writer (``data/bin_io.py``) -- test_reliability_data.py
writer_crash_mid_write                                 exception propagates; previous dataset intact
writer_calendar_not_increasing                         ValueError "calendar day: ... strictly increasing"
writer_non_contiguous_append                           ValueError "SZ000001/close.day: block starts at 4, expected 2"
writer_bin_longer_than_calendar                        ValueError at commit "covers calendar indices 3..7 but ... has 5"
writer_disk_full_while_writing (ENOSPC)                OSError; previous dataset intact
writer_disk_full_at_commit (rename 1 / rename 2)       OSError; previous dataset restored, no temp dir
read_bin_truncated_file                                ValueError naming the path (truncated bin)
``qlib-ext data check`` -- test_reliability_data.py (also: exit 1, dataset unchanged)
check_truncated_bin                                    "<INST> close.day.bin: size ... not a multiple of 4"
check_bin_longer_than_calendar                         "<INST> volume.day.bin ... beyond the N-entry calendar"
check_calendar_shorter_than_data                       "beyond the (N-1)-entry calendar"
check_missing_field                                    "<INST> paused.day.bin is missing"
check_weights_not_summing_to_one                       "w_csi300 sums to ... expected 1" on the date
FieldStager (``data/fields.py``) -- test_reliability_data.py
stager_interrupted_build_resumes                       only unfinished chunks redone; same values
stager_date_off_calendar                               ValueError "chunk c7: date 2023-05-06 is not in calendars/day.txt"
stager_commit_interrupted_by_disk_full                 existing fields intact; rerun of commit completes
Synthetic market config (``data/synth/config.py``) -- test_reliability_data.py
synth_unknown_preset                                   FileNotFoundError "unknown market preset 'tinny'; known: [...]"
synth_bands_larger_than_universe                       ValueError "index bands need 44 stocks but only 22 ..."
synth_board_shares_not_summing_to_one                  ValueError "tiny.yaml: boards shares must sum to 1"
synth_missing_keys                                     ValueError "broken.yaml: missing keys ['returns', 'alpha']"
synth_bad_config_leaves_existing_target_intact         error; target intact
synth_dict_config_is_validated (3 cases)               ValueError, as for a preset file
synth_start_after_end                                  ValueError naming both dates
Importer (``data/importers/``) -- test_reliability_import.py (ImportValidationError, previous dataset intact)
import_ragged_csv_row                                  "daily.csv row 5: ... Expected 9 fields ... saw 11"
import_short_csv_row                                   "daily.csv row 5 (600000.SH ...): low is missing ..."
import_price_column_of_strings (CSV / Parquet)         "daily.csv row 5: close 'abc' is not a number [check type]"
import_corrupt_parquet                                 "shares.parquet: cannot read the file [check read]"
import_missing_column                                  "daily.csv: required column 'high' is missing (... found: ...)"
import_missing_daily_file                              "<source>: no daily file"
import_duplicate_keys                                  "daily.csv row 37 (600000.SH 20240111): duplicate key, also on row 8"
import_non_positive_price                              "row 4 (600000.SH 20240105): low 0 is not positive"
import_high_below_low                                  "row 15 (000001.SZ ...): high 1 < low ... [check high_low]"
import_negative_volume                                 "row 3: vol -100 < 0"
import_date_off_calendar                               "row 4: 2024-01-06 is not an XSHG trading session"
import_whole_session_missing                           "trading day 2024-01-08 has no stock row at all [check gaps]"
import_unparseable_code                                "adj_factor.csv row 6: code 'ABC123' is not like 600519.SH"
import_benchmark_weights_not_summing                   "weights of 000300.SH on 20240102 sum to 90%, expected 100% ± 0.5%"
import_unknown_constituent                             warning in meta/import_report.json; strict: error naming it
import_unknown_code_in_shares (strict)                 warning; strict: error naming the code
import_crash_late (monkeypatched)                      exception; previous dataset intact, no temp dir
import_disk_full_while_writing                         OSError; previous dataset intact
import_disk_full_at_commit                             OSError; previous dataset restored
import_into_path_under_a_file                          OSError naming the path; nothing written
cli_import_into_unwritable_output                      exit 2, stderr names the path
cli_import_bad_input                                   exit 2, stderr names file and row
augment_interrupted_by_disk_full                       existing files intact; rerun completes to the same bytes
augment_failing_strict_check                           target intact, no .staging
import_rerun                                           identical features bytes
Optimizer (``optim/``) -- test_reliability_optim.py
optim_all_nan_signal                                   documented: alpha_fill for every stock, noted; feasible
optim_constant_signal                                  feasible, deterministic portfolio
optim_infinite_signal                                  ValueError naming the stocks
optim_empty_universe                                   ValueError "empty universe: ..."
optim_benchmark_without_members                        ValueError "benchmark has no positive weight ..."
optim_benchmark_not_summing_to_one                     rescaled, note "benchmark weights summed to 0.700000"
optim_negative_benchmark_weight                        ValueError naming the stock
optim_missing_style_exposure                           KeyError "exposure 'size' not in the optimizer input"
optim_duplicate_instruments                            ValueError naming the instrument
optim_infeasible_constraints                           status 'relaxed', relaxed={'Turnover': 0.8}, attempts recorded
optim_hard_infeasible                                  status 'fallback_w0', note, attempts recorded
optim_first_solver_failure                             HiGHS answers; the Clarabel failure recorded in attempts
optim_every_solver_failing                             status 'fallback_benchmark'; each failure message recorded
optim_unknown_solver_and_bad_bounds                    ValueError naming the solver / constraint and bound
optim_rerun                                            bitwise identical weights
Processors and risk -- test_reliability_processors_risk.py
neutralize_all_nan_day                                 NaN that day only; other days = statsmodels residual z
neutralize_constant_exposure                           exposure dropped (= industry-only residual)
neutralize_missing_exposure_column                     KeyError "no column named 'ret_10'"
risk_missing_field                                     FileNotFoundError "field 'turnover' (...) missing"; nothing written
risk_interrupted_build                                 old store byte-identical, no temp dir
risk_too_little_history                                ValueError naming the window and calendar
Reruns -- test_reliability_reruns.py
synth_same_seed                                        every file byte-identical
risk_store_rerun                                       parquet files byte-identical; meta equal but for built_at
minute_factors_rerun_and_other_chunking                mf_* bins identical; other fields untouched
minute_factors_disk_full_while_staging                 nothing in features/; resume skips done chunks; same bytes
Strategy config -- test_reliability_strategy.py
strategy_preset_unknown_key / circular_base            ValueError naming file and key / the chain
strategy_unknown_preset / stray penalty                errors listing the presets / the constraint
strategy_missing_signal_file / placeholder             FileNotFoundError / ValueError naming it
strategy_day_field_missing_everywhere                  ValueError "field 'w_csi500' has no data ..."
Performance tables -- test_reliability_analysis.py
analysis_nan_excess_return                             ValueError "2 NaN values (first on [dates])"
analysis_constant_series                               documented: IR and Calmar NaN, drawdown 0
analysis_report_without_qlib_columns                   KeyError "report_normal lacks columns ['bench', 'cost']"
"""
