"use strict";
(function () {
  var form = document.getElementById("check");
  var input = document.getElementById("code");
  var box = document.getElementById("result");
  var verdict = document.getElementById("verdict");
  var facts = document.getElementById("facts");

  function show(kind, text, answer) {
    box.className = kind;
    verdict.textContent = text;
    facts.style.display = answer ? "grid" : "none";
    if (answer) {
      document.getElementById("type").textContent = answer.type;
      document.getElementById("unit").textContent = answer.unit_name;
      document.getElementById("dates").textContent =
        answer.valid_from + " 至 " + (answer.valid_until || "长期");
    }
  }

  function check(text) {
    show("notice", "查询中……", null);
    fetch("/v1/public/check?q=" + encodeURIComponent(text), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return [response, body]; },
                                     function () { return [response, {}]; });
      })
      .then(function (pair) {
        var response = pair[0], body = pair[1];
        if (response.status === 200) {
          show(body.valid ? "valid" : "invalid", body.valid ? "✔ 有效" : "✘ 无效（已失效、已撤销或尚未生效）", body);
        } else if (response.status === 429) {
          var wait = response.headers.get("Retry-After") || "60";
          show("notice", "查询过于频繁，请于 " + wait + " 秒后再试。", null);
        } else if (response.status === 404 || response.status === 422) {
          show("invalid", "未查到该证明，请核对统一认证码是否输入正确。", null);
        } else if (response.status === 400) {
          show("notice", "请输入统一认证码。", null);
        } else {
          show("notice", "系统暂时无法查询，请稍后再试。", null);
        }
      })
      .catch(function () { show("notice", "网络连接失败，请稍后再试。", null); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (input.value.trim()) { check(input.value.trim()); } else { show("notice", "请输入统一认证码。", null); }
  });
  var given = new URLSearchParams(window.location.search).get("code");
  if (given) { input.value = given; check(given); }
})();
