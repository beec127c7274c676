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
  var before = editor.value.slice(0, start);
  if (before && !/\n\n$/.test(before)) { value = (/\n$/.test(before) ? "\n" : "\n\n") + value; }
  editor.setRangeText(value, start, end, "end");
  editor.focus();
  editor.dispatchEvent(new Event("input", { bubbles: true }));
});
// Keyboard shortcuts ("?" shows them).  Single letters only act when no text
// field has the focus, so typing an answer never triggers one.
(function () {
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); return true; }
    return false;
  }
  function clickFirst(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.grid tbody tr")); }
  function select(step) {
    var all = rows().filter(function (r) { return r.querySelector("a[href^='/consultations/']"); });
    if (!all.length) { return; }
    var current = all.findIndex(function (r) { return r.classList.contains("selected"); });
    var next = current < 0 ? 0 : Math.min(all.length - 1, Math.max(0, current + step));
    all.forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    all[next].classList.add("selected");
    all[next].setAttribute("aria-selected", "true");
    all[next].scrollIntoView({ block: "nearest" });
  }
  function openSelected() {
    var row = document.querySelector("table.grid tbody tr.selected a[href^='/consultations/']");
    if (row) { window.location.href = row.getAttribute("href"); return true; }
    return false;
  }
  function toggleHelp(show) {
    var help = document.getElementById("shortcuts");
    if (help) { help.hidden = show === undefined ? !help.hidden : !show; }
  }
  document.addEventListener("keydown", function (event) {
    var key = event.key;
    if ((event.ctrlKey || event.metaKey) && !event.altKey) {
      if (key === "s" && document.getElementById("save")) { event.preventDefault(); click("save"); }
      else if (key === "Enter" && document.getElementById("preview-send")) { event.preventDefault(); click("preview-send"); }
      return;
    }
    if (key === "Escape") {
      toggleHelp(false);
      if (typing(event.target)) { event.target.blur(); }
      return;
    }
    if (typing(event.target) || event.altKey || event.ctrlKey || event.metaKey) { return; }
    var done = true;
    switch (key) {
      case "?": toggleHelp(); break;
      case "j": select(1); break;
      case "k": select(-1); break;
      case "Enter": case "o": done = openSelected(); break;
      case "n": done = click("take-next") || clickFirst("form.next button"); break;
      case "c": done = click("claim"); break;
      case "e": var editor = document.getElementById("draft-body"); done = !!editor; if (editor) { editor.focus(); } break;
      case "p": done = click("preview-send"); break;
      case "a": done = click("approve"); break;
      default: done = false;
    }
    if (done) { event.preventDefault(); }
  });
})();
