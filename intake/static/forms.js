// Keyboard and screen-reader help for public forms (no other script runs on public pages).
// An error summary or a lookup answer takes focus when the page loads, so people start there;
// a link in the error summary moves focus to its field (browsers would only scroll to it).
document.addEventListener("DOMContentLoaded", function () {
  var first = document.querySelector("#error-summary, #lookup-result");
  if (first) {
    first.focus();
  }
  var links = document.querySelectorAll("#error-summary a[href^='#']");
  Array.prototype.forEach.call(links, function (link) {
    link.addEventListener("click", function (event) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) {
        return;
      }
      // Radio and checkbox groups carry the id on their fieldset: focus its first choice.
      var field = target.matches("input, select, textarea, button")
        ? target
        : target.querySelector("input, select, textarea");
      event.preventDefault();
      var group = document.getElementById((field || target).id.replace(/-\d+$/, "") + "-group");
      (group || target).scrollIntoView();
      (field || target).focus({ preventScroll: true });
    });
  });
});

// Back after sending (security.md F10): form pages are never cached, so Back loads the form
// again with a new submission id, and sending the same answers again would make a second
// case and a second round of emails. Keep the id last sent from this tab and put it back when
// the page is reached by Back or Forward: the server then answers with the case it already
// has (or, for changed answers, says the form was already sent). Without script, a repeat
// still joins the first case as the same child's.
(function () {
  var key = "intake:sent-submission:" + window.location.pathname;
  document.addEventListener(
    "submit",
    function (event) {
      var input = event.target.querySelector("input[name='submission_id']");
      if (!input) {
        return;
      }
      try {
        window.sessionStorage.setItem(key, input.value);
      } catch (ignored) {
        // Storage disabled: nothing to restore later.
      }
    },
    true
  );
  document.addEventListener("DOMContentLoaded", function () {
    var entries = window.performance && performance.getEntriesByType
      ? performance.getEntriesByType("navigation")
      : [];
    if (!entries.length || entries[0].type !== "back_forward") {
      return;
    }
    var input = document.querySelector("form input[name='submission_id']");
    var sent = null;
    try {
      sent = window.sessionStorage.getItem(key);
    } catch (ignored) {
      return;
    }
    if (input && sent) {
      input.value = sent;
    }
  });
})();

// Switching language on a form keeps what was typed: the switch is a plain link that loads
// the page again in the other language, which would otherwise empty the form (a parent who
// notices "Español" only after an error would lose everything). The answers travel in this
// tab's sessionStorage for the one page load and are deleted as soon as they are put back;
// files, the CSRF token, the submission id and the honeypot are never copied.
(function () {
  var key = "intake:carry-answers:" + window.location.pathname;
  var skip = { csrf_token: true, submission_id: true, website: true };

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name && !skip[field.name] && field.type !== "file" && field.type !== "hidden"
        && field.type !== "submit" && field.type !== "button";
    });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest(".lang-switch a") : null;
    var form = document.querySelector("main form[method='post']");
    if (!link || !form) {
      return;
    }
    var answers = [];
    fields(form).forEach(function (field) {
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked) {
          answers.push([field.name, field.value, true]);
        }
      } else if (field.value) {
        answers.push([field.name, field.value, false]);
      }
    });
    if (!answers.length) {
      return;
    }
    try {
      window.sessionStorage.setItem(key, JSON.stringify({ at: Date.now(), answers: answers }));
    } catch (ignored) {
      // Storage disabled: the page loads empty, as without script.
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var saved = null;
    try {
      saved = JSON.parse(window.sessionStorage.getItem(key) || "null");
      window.sessionStorage.removeItem(key);
    } catch (ignored) {
      return;
    }
    var form = document.querySelector("main form[method='post']");
    if (!saved || !form || Date.now() - saved.at > 10 * 60 * 1000) {
      return;
    }
    var byName = {};
    fields(form).forEach(function (field) {
      (byName[field.name] = byName[field.name] || []).push(field);
    });
    saved.answers.forEach(function (answer) {
      (byName[answer[0]] || []).forEach(function (field) {
        if (field.type === "checkbox" || field.type === "radio") {
          if (answer[2] && field.value === answer[1]) {
            field.checked = true;
          }
        } else {
          field.value = answer[1];
        }
      });
    });
  });
})();
