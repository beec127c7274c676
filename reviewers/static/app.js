// mailbot reviewer queue: small progressive enhancements; every page works without script.
"use strict";
document.addEventListener("click", function (event) {
  // Buttons with data-confirm ask before submitting (approve and send, reject).
  var button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});
document.addEventListener("DOMContentLoaded", function () {
  // A checkbox with data-toggle shows/hides the element it names.
  document.querySelectorAll("[data-toggle]").forEach(function (box) {
    var target = document.getElementById(box.getAttribute("data-toggle"));
    if (!target) { return; }
    var sync = function () { target.hidden = !box.checked; };
    box.addEventListener("change", sync);
    sync();
  });
  // Warn before leaving a page with unsaved edits in the draft editor.
  var editor = document.getElementById("draft-body");
  if (editor && !editor.readOnly) {
    var original = editor.value, submitting = false;
    document.querySelectorAll("form").forEach(function (f) {
      f.addEventListener("submit", function () { submitting = true; });
    });
    window.addEventListener("beforeunload", function (event) {
      if (!submitting && editor.value !== original) { event.preventDefault(); event.returnValue = ""; }
    });
  }
});
document.addEventListener("click", function (event) {
  // "Insert" a canned response at the cursor (without script the button posts and the page appends it).
  var button = event.target.closest("#insert-macro");
  if (!button) { return; }
  var pick = document.getElementById("macro-pick");
  var editor = document.getElementById("draft-body");
  var text = pick && document.getElementById("macro-text-" + pick.value);
  if (!editor || !text) { return; }
  event.preventDefault();
  var value = text.content ? text.content.textContent : text.textContent;
  var start = editor.selectionStart, end = editor.selectionEnd;
  editor.setRangeText(value, start, end, "end");
  editor.focus();
  editor.dispatchEvent(new Event("input", { bubbles: true }));
});
