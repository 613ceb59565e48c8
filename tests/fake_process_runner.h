// A ProcessRunner that runs nothing: each step (found by RUNNER_STEP in its environment)
// behaves as the test scripts it, so the scheduler is tested fast and exactly.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <deque>
#include <fstream>
#include <map>
#include <thread>

#include "runner/process.h"

namespace runner {

struct FakeAttempt {
  FakeAttempt& Prints(std::string text) {
    output = std::move(text);
    return *this;
  }
  FakeAttempt& Exits(int code) {
    exit_code = code;
    return *this;
  }
  FakeAttempt& WritesOutputs(std::string text) {
    outputs_file = std::move(text);
    return *this;
  }
  // Runs until terminated; with `stubborn`, until killed.
  FakeAttempt& Hangs(bool stubborn = false) {
    hang = true;
    ignore_terminate = stubborn;
    return *this;
  }

  std::string output;
  int exit_code = 0;
  std::string outputs_file;  // written to RUNNER_OUTPUT
  bool hang = false;
  bool ignore_terminate = false;
};

class FakeProcessRunner : public ProcessRunner {
 public:
  // Attempts of a step, in order; the last repeats. A step without a script succeeds silently.
  std::map<std::string, std::vector<FakeAttempt>> script;
  std::vector<ProcessSpec> started;
  std::vector<std::string> start_order;
  std::vector<std::pair<std::string, int>> terminated;  // step, signal
  std::vector<std::string> killed;
  int max_running = 0;
  // Delivered by the next Wait, as if the runner had received a signal.
  std::deque<int> pending_signals;
  // Called as every Wait begins, to inject signals at a chosen moment.
  std::function<void(FakeProcessRunner&)> on_wait;

  Result<int> Start(ProcessSpec spec) override {
    started.push_back(spec);
    std::string step = Env(spec, "RUNNER_STEP");
    start_order.push_back(step);
    int attempt = attempts_[step]++;
    FakeAttempt behaviour;
    if (auto it = script.find(step); it != script.end() && !it->second.empty()) {
      behaviour = it->second[std::min<size_t>(attempt, it->second.size() - 1)];
    }
    if (!behaviour.outputs_file.empty()) {
      std::ofstream(Env(spec, "RUNNER_OUTPUT")) << behaviour.outputs_file;
    }
    int id = next_id_++;
    running_[id] = Running{step, behaviour, std::nullopt};
    max_running = std::max(max_running, static_cast<int>(running_.size()));
    return id;
  }

  void Terminate(int id, int sig) override {
    auto it = running_.find(id);
    if (it == running_.end()) return;
    terminated.emplace_back(it->second.step, sig);
    if (!it->second.behaviour.ignore_terminate) it->second.ended_by = 128 + sig;
  }

  void Kill(int id) override {
    auto it = running_.find(id);
    if (it == running_.end()) return;
    killed.push_back(it->second.step);
    it->second.ended_by = 128 + SIGKILL;
  }

  // Finishes one process per call (the oldest that can finish), so that several stay running
  // at once and the job limit can be observed.
  std::vector<ProcessEvent> Wait(std::chrono::steady_clock::time_point deadline) override {
    if (on_wait) on_wait(*this);
    std::vector<ProcessEvent> events;
    if (!pending_signals.empty()) {
      ProcessEvent event;
      event.type = ProcessEvent::Type::kSignal;
      event.signal = pending_signals.front();
      if (received_signal_ == 0) received_signal_ = event.signal;
      events.push_back(event);
      pending_signals.pop_front();
    } else {
      for (auto it = running_.begin(); it != running_.end(); ++it) {
        Running& process = it->second;
        if (process.behaviour.hang && !process.ended_by) continue;
        ProcessEvent event;
        event.id = it->first;
        if (!process.behaviour.output.empty()) {
          event.type = ProcessEvent::Type::kOutput;
          event.data = process.behaviour.output;
          events.push_back(event);
        }
        event.type = ProcessEvent::Type::kDone;
        event.data.clear();
        event.exit_code = process.ended_by ? *process.ended_by : process.behaviour.exit_code;
        events.push_back(event);
        running_.erase(it);
        break;
      }
      if (events.empty()) {
        // Nothing can happen before the deadline; a far one means the scheduler would hang.
        if (deadline - std::chrono::steady_clock::now() > std::chrono::seconds(10)) {
          ADD_FAILURE() << "the scheduler waits with nothing that can end the wait";
          for (auto& [id, process] : running_) process.ended_by = 128 + SIGKILL;
        } else {
          std::this_thread::sleep_until(deadline);
        }
      }
    }
    return events;
  }

  void Interrupt(int id, int sig) override {
    ADD_FAILURE() << "Interrupt(" << id << ", " << sig << ") is not expected of a build";
  }
  // The scheduler, the one caller here, never hands work across threads.
  void Wake() override { ADD_FAILURE() << "Wake() is not expected of a build"; }
  int running() const override { return static_cast<int>(running_.size()); }
  int received_signal() const override { return received_signal_; }

  static std::string Env(const ProcessSpec& spec, const std::string& name) {
    for (const std::string& entry : spec.env) {
      if (entry.starts_with(name + "=")) return entry.substr(name.size() + 1);
    }
    return "";
  }

 private:
  struct Running {
    std::string step;
    FakeAttempt behaviour;
    std::optional<int> ended_by;
  };
  std::map<int, Running> running_;
  std::map<std::string, int> attempts_;
  int next_id_ = 1;
  int received_signal_ = 0;
};

}  // namespace runner
