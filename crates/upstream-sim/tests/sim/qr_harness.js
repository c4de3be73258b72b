// Runs the inline script of a QR page (file argv[3]) against a live simulator (argv[2]) with a stub DOM,
// printing every message posted to window.parent as one JSON line: {"message":..,"target":..}.
"use strict";
const fs = require("fs");
const vm = require("vm");
const [base, file] = [process.argv[2], process.argv[3]];
const page = fs.readFileSync(file, "utf8");
const script = page.split("<script>")[1].split("</script>")[0];
const elements = {};
const context = {
  window: {
    parent: {
      postMessage: (data, target) => {
        if (data.module !== "qr") throw new Error("module must be qr");
        process.stdout.write(JSON.stringify({ message: data.message, target }) + "\n");
      },
    },
  },
  document: {
    getElementById: (id) => (elements[id] = elements[id] || { textContent: "", innerHTML: "", className: "" }),
  },
  fetch: (url, options) => fetch(base + url, options),
  setTimeout,
};
vm.runInNewContext(script, context);
