// Editor code the LLaVA nodes share (Node-RED serves this folder at resources/node-red-contrib-llava/): the rows
// several edit dialogs have (model selector, typed properties, "while busy" queue, name) and their behaviour. Each
// node's .html keeps its own defaults, rows and help, and marks where a shared row goes:
//   <div data-llava-row="model"></div>        (data-class="…": more classes on the row)
//   <div data-llava-row="typed" data-property="input" data-icon="fa-sign-in" data-label="Pixels"></div>
//   <div data-llava-row="queue"></div>
//   <div data-llava-row="name"></div>
/* global RED, $ */
(function () {
    'use strict';
    if (window.LlavaEditor) return;

    var TYPED = ['msg', 'flow', 'global'];
    var ORDINALS = ['first', 'second', 'third', 'fourth'];

    function escape(text) {
        return $('<div>').text(text).html();
    }

    var rows = {
        model: function (el) {
            return '<div class="form-row ' + (el.attr('data-class') || '') + '"><label for="node-input-model"><i class="fa fa-cube"></i> Model</label>' +
                '<input type="text" id="node-input-model"></div>';
        },
        typed: function (el) {
            var p = el.attr('data-property');
            return '<div class="form-row"><label for="node-input-' + p + '"><i class="fa ' + el.attr('data-icon') + '"></i> ' +
                escape(el.attr('data-label')) + '</label>' +
                '<input type="text" id="node-input-' + p + '" style="width: 70%">' +
                '<input type="hidden" id="node-input-' + p + 'Type"></div>';
        },
        queue: function () {
            return '<div class="form-row"><b>While busy</b></div>' +
                '<div class="form-row"><label for="node-input-queuePolicy"><i class="fa fa-random"></i> Policy</label>' +
                '<select id="node-input-queuePolicy" style="width: 70%">' +
                '<option value="latest">latest wins per msg.topic</option>' +
                '<option value="fifo">queue in order</option>' +
                '<option value="drop-new">drop new messages</option></select></div>' +
                '<div class="form-row llava-queue-length"><label for="node-input-queueLength"><i class="fa fa-bars"></i> Waiting</label>' +
                '<input type="text" id="node-input-queueLength" style="width: 80px">' +
                ' <span class="llava-hint">messages (latest: topics) at most</span></div>' +
                '<div class="form-row llava-queue-length"><label for="node-input-maxWait"><i class="fa fa-clock-o"></i> Wait limit</label>' +
                '<input type="text" id="node-input-maxWait" style="width: 80px" placeholder="none">' +
                ' <span class="llava-hint">seconds; a message waiting longer is dropped (timeout)</span></div>' +
                '<div class="form-row"><label for="node-input-dropped"><i class="fa fa-trash-o"></i> Dropped</label>' +
                '<select id="node-input-dropped" style="width: 70%">' +
                '<option value="status">count in the status</option>' +
                '<option value="output">send to an extra output</option>' +
                '<option value="error">report as an error (catch node)</option></select>' +
                '<input type="hidden" id="node-input-outputs"></div>';
        },
        name: function () {
            return '<div class="form-row"><label for="node-input-name"><i class="fa fa-tag"></i> Name</label>' +
                '<input type="text" id="node-input-name" placeholder="Name"></div>';
        }
    };

    /** Replaces the shared-row marks in a node's edit template (Node-RED reads the template when a dialog opens). */
    function expandTemplate(type) {
        var template = $('script[data-template-name="' + type + '"]');
        if (template.length === 0) return false;
        var form = $('<div>').html(template.html());
        form.find('[data-llava-row]').each(function () {
            var el = $(this);
            el.replaceWith(rows[el.attr('data-llava-row')](el));
        });
        template.html(form.html());
        return true;
    }

    /** The node's own outputs: its definition's count without the dropped-message output. */
    function ownOutputs(node) {
        return node._def.outputs;
    }

    window.LlavaEditor = {
        /**
         * Call next to RED.nodes.registerType: the template follows the definition in the .html, so it may not be
         * in the page yet; then it is expanded once the page has it (before any dialog can open).
         */
        template: function (type) {
            if (!expandTemplate(type)) $(function () { expandTemplate(type); });
        },

        /**
         * oneditprepare: typed properties (name → the types offered, default msg/flow/global) and, when the
         * definition has queue fields, the queue rows. Blank queue fields (a flow saved before the node had them)
         * show the definition's defaults, which the runtime also uses.
         */
        prepare: function (node, typed) {
            Object.keys(typed || {}).forEach(function (p) {
                $('#node-input-' + p).typedInput({ default: 'msg', types: typed[p] || TYPED, typeField: '#node-input-' + p + 'Type' });
            });
            if (!node._def.defaults.queuePolicy) return;
            var defaults = node._def.defaults;
            ['queuePolicy', 'queueLength', 'dropped'].forEach(function (f) {
                var input = $('#node-input-' + f);
                if (input.val() === '' || input.val() === null) input.val(defaults[f].value);
            });
            $('#node-input-dropped option[value="output"]').text('send to a ' + ORDINALS[ownOutputs(node)] + ' output');
            $('#node-input-queueLength').spinner({ min: 0, max: 1000 });
            var showLength = function () { $('.llava-queue-length').toggle($('#node-input-queuePolicy').val() !== 'drop-new'); };
            $('#node-input-queuePolicy').on('change', showLength);
            showLength();
        },

        /** oneditsave: the dropped-message output, when chosen, comes after the node's own outputs. */
        save: function (node) {
            if (!node._def.defaults.queuePolicy) return;
            $('#node-input-outputs').val(ownOutputs(node) + ($('#node-input-dropped').val() === 'output' ? 1 : 0));
        },

        /** outputLabels for a queued node: its own labels, then the dropped messages. */
        outputLabels: function (labels) {
            return function (i) { return labels.concat(['dropped messages'])[i]; };
        }
    };
})();
